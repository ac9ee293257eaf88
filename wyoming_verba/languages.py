"""Language tags as Home Assistant must see them: one valid BCP-47 spelling per language.

Home Assistant groups voices by the exact tag string and refuses a request whose language
is not among the tags it was shown, so `en_US` (Piper) next to `en-US` (Edge) would be
two languages there. Every advertised tag goes through `bcp47`."""

from __future__ import annotations

import re

# ISO 639-1: the only valid two-letter language subtags (espeak-ng has "py", a conlang).
_ISO_639_1 = frozenset(
    "aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu "
    "cv cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi "
    "ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks "
    "ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl "
    "nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl "
    "sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve "
    "vi vo wa wo xh yi yo za zh zu".split()
)
_VALID = re.compile(r"^[a-z]{2,3}(-[A-Z][a-z]{3})?(-(?:[A-Z]{2}|[0-9]{3}))?$")


def bcp47(tag: str) -> str | None:
    """`en_us` → `en-US`, `fa-latn` → `fa-Latn`, `sr-Latn-rs` → `sr-Latn-RS`; variants
    and private-use parts are dropped (`en-GB-x-rp` → `en-GB`); None when no valid tag
    is left (`py`, `piqd`, empty)."""
    parts = [p for p in tag.strip().replace("_", "-").split("-") if p]
    if not parts:
        return None
    language, script, region = parts[0].lower(), "", ""
    for part in parts[1:]:
        if part.lower() == "x":
            break  # private use from here on
        if len(part) == 4 and part.isalpha() and not script and not region:
            script = part.title()
        elif (len(part) == 2 and part.isalpha()) or (len(part) == 3 and part.isdigit()):
            region = region or part.upper()
        # anything else is a variant: dropped
    if len(language) == 2 and language not in _ISO_639_1:
        return None
    if script.startswith("Qa") and script[2] <= "b":  # Qaaa-Qabx: private-use scripts
        script = ""
    result = "-".join(p for p in (language, script, region) if p)
    return result if _VALID.match(result) else None
