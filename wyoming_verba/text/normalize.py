"""Numbers, units, dates, times, money, phone numbers, abbreviations and symbols spelled
out in words, by the sentence's language: English and German (by the primary subtag);
other languages pass through unchanged.

For the backends that read digits and symbols poorly (`Backend.normalizes_text`): CSM is
a language model and reads "21.5 °C", "$5.50" or "14:30" unreliably; Piper and espeak-ng
have espeak-ng's rules, which miss currencies after the number, units, 24-hour times,
German ordinals and phone numbers.

`normalize` takes ONE sentence the splitter already cut. It keeps the sentence's final
punctuation and never puts a sentence terminator (. ! ? …) inside it ("3.5" becomes
"three point five", never "three. five"), so it cannot move a sentence boundary. Number
words come from num2words; the nouns around them from `vocabulary`. The rules run in a
fixed order, most specific first (a phone number before a range, a date before an
ordinal, a currency before a plain number); each consumes what it reads."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache, partial

from num2words import num2words

from .vocabulary import VOCABULARIES, Currency, Noun, Vocabulary

_FINAL = re.compile(r"[.!?…。！？]+$")
_SPACES = re.compile(r"[ \t]{2,}")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,;:])")
_WORD_BEFORE = re.compile(r"([^\W\d_]+)[^\w]*$")
_WORD_AFTER = re.compile(r"\W*([^\W\d_]+)")

# Words before a German ordinal ("am 2. Mai") and the ending they ask for.
_DE_EN_ENDING = frozenset("am im zum vom beim zur dem den des einem einen einer eines ab bis "
                          "seit ihrem seinem meinem unserem ihren seinen meinen".split())
_DE_ARTICLES = frozenset("der die das".split())
_DE_PREPOSITIONS = frozenset("in an auf bei mit nach von zu aus vor hinter über unter neben "
                             "zwischen seit während wegen trotz".split())
_DE_FEMININE_ENDINGS = ("e", "ung", "heit", "keit", "schaft", "ion", "tät", "ik", "ei", "enz",
                        "anz", "ur", "erin")
_DE_FEMININE = frozenset("person nacht stadt frau hand tür zeit welt art milch wand kraft fahrt "
                         "tat wahl zahl maus bank post".split())
_DE_NOT_FEMININE = frozenset("name käse junge kunde affe friede gedanke glaube wille buchstabe "
                             "gebäude ende auge erbe interesse gemüse zimmer".split())
_DE_NUMBERED = frozenset("nummer platz seite kapitel zimmer folge teil staffel level stufe gleis "
                         "linie bus tor runde spiel version band artikel absatz punkt schritt "
                         "tag raum etage haus".split())
_DE_NEUTER_ENDINGS = ("chen", "lein", "um", "ment", "mal", "jahr", "haus", "kind", "buch")

Rule = Callable[[re.Match[str], str], str]  # (match, the sentence's final punctuation)


def normalize(sentence: str, language: str) -> str:
    """`sentence` with its numbers, units, symbols and abbreviations in words of
    `language` (a BCP-47 tag; English and German, others unchanged)."""
    tag = language.replace("_", "-").lower()
    code, _, rest = tag.partition("-")
    if code not in VOCABULARIES:
        return sentence
    final = _FINAL.search(sentence)
    body, tail = (sentence[: final.start()], final.group()) if final else (sentence, "")
    region = rest.split("-")[-1] if rest else ""
    rules = _rules_for(code, month_first=region in ("", "us"))
    text = rules.apply(body, tail).strip()
    return text + tail if text else sentence


@lru_cache(maxsize=8)
def _rules_for(code: str, month_first: bool) -> _Rules:
    return _Rules(VOCABULARIES[code], month_first)


def _alternation(words: list[str]) -> str:
    """Longest first, so "kWh" wins over "kW"; a word ending in "." may lose that dot at
    the end of the sentence (the final punctuation was split off)."""
    parts = []
    for word in sorted(set(words), key=len, reverse=True):
        if word.endswith("."):
            parts.append(re.escape(word[:-1]) + r"(?:\.|$)")
        else:
            parts.append(re.escape(word))
    return "|".join(parts)


def _lookup(table: dict, key: str):  # noqa: ANN202 - a Noun or a Currency
    return table.get(key) or table.get(key + ".") or table[key.rstrip(".") + "."]


def _previous_words(text: str, start: int, count: int = 2) -> list[str]:
    """Up to `count` words before `start`, nearest first, lower-case."""
    words: list[str] = []
    head = text[:start]
    while len(words) < count:
        m = _WORD_BEFORE.search(head)
        if m is None:
            break
        words.append(m.group(1).lower())
        head = head[: m.start()]
    return words


def _next_word(text: str, end: int) -> str:
    m = _WORD_AFTER.match(text, end)
    return m.group(1) if m else ""


class _Rules:
    """One language's rules, compiled once."""

    def __init__(self, v: Vocabulary, month_first: bool) -> None:
        self.v = v
        self.de = v.code == "de"
        self.month_first = month_first
        if self.de:  # 1.000 and 10 000 (DIN 5008) group digits; 1,5 and 1.5 are decimals
            num = r"\d{1,3}(?:\.\d{3})+(?:,\d+)?(?!\d)|\d{1,3}(?: \d{3})+(?!\d)|\d+[,.]\d+|\d+"
        else:
            num = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d)|\d+\.\d+|\d+"
        # A number: never the middle of another one, never followed by more of one.
        n = rf"(?<![\d.,/])(?:{num})(?![.,]?\d)"
        sign = r"(?P<sign>(?<![\w.,])[-−+](?=\d))?"
        qty = rf"{sign}(?P<a>{n})(?:(?:-|–|\s–\s)(?P<b>{n}))?"
        # Money: a separator before exactly three digits groups them, before one or two
        # it is the decimal point, in either language ("$5.50", "5,50 €", "€1.000").
        amount = (r"(?<![\d.,/])(?:\d{1,3}(?:[.,]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?)"
                  r"(?![.,]?\d)")
        symbols = [c for c in v.currencies if not c.isalpha()]
        codes = [c for c in v.currencies if c.isalpha()]
        currency = rf"(?:{_alternation(symbols)}|(?:{_alternation(codes)})(?![^\W\d_]))"
        scale = rf"(?:{_alternation(list(v.scales))})(?![^\W\d_])"
        units = rf"(?:{_alternation(list(v.units))})"
        per = rf"(?:\s?/\s?(?P<per>{units}(?![\w²³])|[^\W\d_]+))?"
        months = _alternation([m.capitalize() for m in v.month_aliases if len(m) > 2])
        month_abbr = r"(?:\.(?!$))?"  # "Dec. 1"
        self.abbreviations = [(re.compile(rf"(?<!\w){pattern}"), words)
                              for pattern, words in v.abbreviations]
        # Times first: "14.30 Uhr" is no date, "December 5 p.m." no day of December and
        # "… 1234567 11 a.m." no longer phone number.
        rules: list[tuple[str, Rule]] = []
        if self.de:
            rules.append((r"(?<![\d:.,])(?P<h>\d{1,2})(?::(?P<m>\d{2})(?::(?P<s>\d{2}))?"
                          r"(?:\s?Uhr\b)?|\.(?P<m2>\d{2})\s?Uhr\b)(?![\d:])", self._clock))
        else:
            rules += [
                (r"(?<![\d:.,])(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2}))?"
                 r"(?:\s?(?P<ap>[AaPp])\.?\s?[Mm](?:\.|(?!\w)))?(?![\d:])", self._clock),
                (r"(?<![\d:.,])(?P<h>\d{1,2})\s?(?P<ap>[AaPp])\.?\s?[Mm](?:\.|(?!\w))",
                 self._clock),
            ]
        rules.append((r"(?<![\d:.,])(?P<a>\d{1,3}):(?P<b>\d{1,3})(?![\d:])", self._ratio))
        rules += [
            (r"(?<![\w+.,])(?:\+\d{1,3}(?:\s?\(\d{1,5}\)|[ ./-]?\d{2,5}|[./-]?\d){2,}"
             r"|\(\d{2,5}\)\s?\d{2,4}(?:[ .-]?\d{2,5}){1,2}"
             r"|\d{3}[ .-]\d{3}[.-]\d{4}|\d{3}-\d{4}|0\d{2,4}[ /-]\d{3,8})(?![\w.,:]?\d)",
             self._phone),
            (r"(?<![\d.-])(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})(?![\d-])", self._date),
            (r"(?<![\d.,])(?P<d>\d{1,2})\.\s?(?P<m>\d{1,2})\.(?:\s?(?P<y>\d{4}|\d{2})(?![\d.])"
             + (r"|(?!\d))" if self.de else ")"), self._date),
            (r"(?<![\d/])(?P<a>\d{1,2})/(?P<b>\d{1,2})/(?P<y>\d{4}|\d{2})(?![\d/])",
             self._slashed_date),
        ]
        if not self.de:  # German writes "1. Dezember": the ordinal rule reads it
            rules += [
                (rf"(?P<month>{months}){month_abbr}\s(?P<d>\d{{1,2}})(?:st|nd|rd|th)?"
                 r"(?![\d.:]|,\d)(?:,?\s(?P<y>\d{4})(?!\d))?", self._month_day),
                (rf"(?<![\w.,])(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\s(?:of\s)?(?P<month>{months})"
                 rf"{month_abbr}(?!\w)(?:,?\s(?P<y>\d{{4}})(?!\d))?", self._day_month),
            ]
        rules.append((rf"(?P<month>{months}){month_abbr}\s(?P<y>\d{{4}})(?![\d.,]?\d)",
                      self._month_year))
        if self.de:
            rules.append((r"(?<![\d.,])(?P<d>\d{1,2})\.(?P<m>\d{1,2})$", self._date_at_end))
        rules += [
            (rf"(?<![\w$€£¥])(?P<sign>[-−])?(?P<cur>{currency})\s?(?P<amt>{amount})"
             rf"(?:\s?(?P<scale>{scale}))?(?![\w²³]){per}", self._money),
            (rf"(?<![\w.,])(?P<sign>[-−])?(?P<amt>{amount})(?:(?:-|–|\s–\s)(?P<amt2>{amount}))?"
             rf"(?:\s?(?P<scale>{scale}))?\s?(?P<cur>{currency}){per}", self._money),
            (rf"{qty}\s?°(?:\s?(?P<unit>[CF])(?!\w))?", self._degrees),
            (rf"{qty}\s?(?P<unit>%|‰)", self._percent),
            (r"(?<![\w.,])(?P<a>\d{4}|\d0)(?P<s>s|er|ern)(?!\w)", self._decade),
            (rf"{qty}\s?(?P<unit>{units})(?![\w/²³]){per}", self._unit),
            (r"(?<![\w.,])(?P<n>\d+)(?P<suffix>st|nd|rd|th)(?!\w)", self._english_ordinal),
        ]
        if self.de:
            rules += [
                (r"(?<![\w.,])(?P<n>\d{1,3})\.(?=\s+[^\W\d_])", self._german_ordinal),
                (r"(?<![\w.,])(?P<n>\d{1,3})$", self._german_ordinal_at_end),
            ]
        rules += [
            (r"(?<![\w/.,])(?P<a>\d+)\s?/\s?(?P<b>\d+)(?![\w/]|[.,]\d)", self._fraction),
            (r"(?<![\w.,])\d+(?:\.\d+){2,}(?![\w.]|,\d)", self._dotted),
            (rf"(?<![\w.,])(?P<a>{n})(?:-|–|\s–\s)(?P<b>{n})", self._range),
            (rf"(?<![\w.,])(?P<a>{n})\s?(?P<scale>{scale})", self._scaled),
            (r"(?<![\w.,])(?P<y>\d{4})(?![.,]?\d)", self._year_in_context),
        ]
        if self.de:
            rules.append((r"(?<![\w.,])1\s(?=[A-ZÄÖÜ][a-zäöüß])", self._german_one))
        rules += [
            (rf"{sign}(?P<a>{n})", self._number),
            (r"\d+", self._digits),
        ]
        self.rules = [(re.compile(p), f) for p, f in rules]
        self.symbols = self._symbol_rules()
        # Without one of these (or "per " before a unit) no symbol rule changes anything.
        spelled = "".join(re.escape(c) for c in [*self._plain(), *self._currency_signs()])
        self.symbol_chars = re.compile(rf"[/°{spelled}]|\b{re.escape(v.per)} ")

    # --- running ---------------------------------------------------------------------

    def apply(self, body: str, tail: str) -> str:
        text = body
        for pattern, replacement in self.abbreviations:
            text = pattern.sub(replacement, text)  # plain words: no backslashes
        for pattern, rule in self.rules:
            if not any(ch.isdigit() for ch in text):
                break  # every rule from here on reads digits
            text = pattern.sub(partial(_run, rule, tail), text)
        if self.symbol_chars.search(text) is not None:  # most sentences have none
            for pattern, spell in self.symbols:
                text = pattern.sub(spell, text)
        text = _SPACES.sub(" ", text)
        return _SPACE_BEFORE_PUNCT.sub(r"\1", text)

    def _symbol_rules(self) -> list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]]:
        v = self.v
        and_or, and_or_words = v.and_or
        plain = self._plain()
        currencies = self._currency_signs()
        units = _alternation(list(v.units))
        out: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
            (re.compile(rf"(?<=\b{v.per} )(?:{units})(?![\w/²³])"),  # "per kWh"
             lambda m: _lookup(v.units, m.group()).one),
            (re.compile(re.escape(and_or), re.IGNORECASE), lambda m: and_or_words),
            (re.compile(r"\s?°\s?C(?!\w)"), lambda m: f" {v.degree.many} {v.celsius}"),
            (re.compile(r"\s?°\s?F(?!\w)"), lambda m: f" {v.degree.many} {v.fahrenheit}"),
            (re.compile(r"\s?°"), lambda m: f" {v.degree.many}"),
            (re.compile("|".join(re.escape(s) for s in plain)),
             lambda m: f" {plain[m.group()]} "),
            (re.compile("|".join(re.escape(s) for s in currencies)),
             lambda m: f" {currencies[m.group()]} "),
            (re.compile(r"(?<=[^\W\d_])\s?/\s?(?=[^\W\d_])"), lambda m: f" {v.or_} "),
            (re.compile(r"\s?/\s?"), lambda m: " "),
        ]
        return out

    def _plain(self) -> dict[str, str]:
        """Symbols read as one word wherever they stand."""
        v = self.v
        return {"&": v.and_, "+": v.plus, "=": v.equals, "@": v.at, "×": v.times,
                "±": v.plus_minus, "≤": v.less_than, "<": v.less_than, "≥": v.more_than,
                ">": v.more_than, "%": v.percent, "‰": v.per_mille}

    def _currency_signs(self) -> dict[str, str]:
        return {c: cur.unit.many for c, cur in self.v.currencies.items() if not c.isalpha()}

    # --- readers ---------------------------------------------------------------------

    def value(self, text: str) -> Decimal:
        """A number as written in this language: "1,234.5" (en), "1.234,5" (de)."""
        if self.de:
            text = text.replace(" ", "")
            if "," in text or re.fullmatch(r"\d{1,3}(?:\.\d{3})+", text):
                text = text.replace(".", "").replace(",", ".")
        else:
            text = text.replace(",", "")
        return Decimal(text)

    def words(self, number: Decimal | int) -> str:
        # num2words writes "one thousand, one hundred": a comma is a pause, not a number.
        return str(num2words(number, lang=self.v.code)).replace(",", "")

    def number(self, text: str, sign: str = "") -> str:
        value = self.value(text)
        spoken = self.words(int(value) if value == value.to_integral_value() and
                            "." not in str(value) else value)
        if sign in ("-", "−"):
            return f"{self.v.minus} {spoken}"
        return f"{self.v.plus} {spoken}" if sign == "+" else spoken

    def count(self, text: str, noun: Noun, sign: str = "") -> str:
        """A number and its noun: "one kilometer", "zwei Kilometer", "eine Minute"."""
        value = self.value(text)
        one = value == 1 and "." not in str(value)
        spoken = self.number(text, sign)
        if one and self.de:
            spoken = spoken[: -len("eins")] + ("eine" if noun.feminine else "ein")
        return f"{spoken} {noun.one if one else noun.many}"

    def ordinal(self, number: int) -> str:
        return str(num2words(number, lang=self.v.code, to="ordinal"))

    def year(self, number: int) -> str:
        return str(num2words(number, lang=self.v.code, to="year")).replace(",", "")

    def digit_words(self, digits: str) -> str:
        return " ".join(self.words(int(d)) for d in digits)

    def german_ending(self, text: str, start: int, end: int) -> str:
        """The ending of a German ordinal from its neighbours: "am zweiten Mai",
        "der zweite Mai", "zweiter Mai", "die zweite Auflage", "das dritte Mal"."""
        before = _previous_words(text, start)
        if before and before[0] in _DE_EN_ENDING:
            return "en"
        if before and before[0] in _DE_ARTICLES:
            return "en" if len(before) > 1 and before[1] in _DE_PREPOSITIONS else "e"
        if before and before[0] == "eine":
            return "e"
        following = _next_word(text, end)
        low = following.lower()
        if low in self.v.month_aliases:
            return "er"
        if low.endswith(_DE_NEUTER_ENDINGS):
            return "es"
        if _feminine(low):
            return "e"
        return "er"

    def german_ordinal(self, number: int, ending: str) -> str:
        base = self.ordinal(number)  # "zweite"
        return base[:-1] + ending if base.endswith("e") else base + ending

    def spoken_date(self, day: int, month: int, year: int | None, m: re.Match[str]) -> str:
        v = self.v
        if self.de:
            ending = self.german_ending(m.string, m.start(), m.end())
            out = f"{self.german_ordinal(day, ending)} {v.months[month - 1]}"
            return out + (f" {self.year(year)}" if year is not None else "")
        if self.month_first:
            out = f"{v.months[month - 1]} {self.ordinal(day)}"
            return out + (f", {self.year(year)}" if year is not None else "")
        before = _previous_words(m.string, m.start(), 1)
        out = f"the {self.ordinal(day)} of {v.months[month - 1]}"
        if before == ["the"]:
            out = out[len("the "):]
        return out + (f", {self.year(year)}" if year is not None else "")

    # --- rules (each returns the words, or the match unchanged to leave it) ------------

    def _phone(self, m: re.Match[str], tail: str) -> str:
        text = m.group()
        if sum(ch.isdigit() for ch in text) < 7:
            return text
        groups = re.findall(r"\d+", text)
        spoken = ", ".join(self.digit_words(g) for g in groups)
        return f"{self.v.plus} {spoken}" if text.startswith("+") else spoken

    def _date(self, m: re.Match[str], tail: str) -> str:
        day, month = int(m["d"]), int(m["m"])
        year = _full_year(m.groupdict().get("y"))
        if not (1 <= day <= 31 and 1 <= month <= 12):
            return m.group()
        return self.spoken_date(day, month, year, m)

    def _date_at_end(self, m: re.Match[str], tail: str) -> str:
        """German "am 1.12" + ".": the date's last dot is the sentence's."""
        before = _previous_words(m.string, m.start(), 1)
        if not (tail.startswith(".") and before and before[0] in _DE_EN_ENDING | _DE_ARTICLES):
            return m.group()
        return self._date(m, tail)

    def _slashed_date(self, m: re.Match[str], tail: str) -> str:
        a, b = int(m["a"]), int(m["b"])
        month_first = self.month_first and not self.de
        if (a > 12) or (b > 12):  # the only way it can be read
            month_first = b > 12
        month, day = (a, b) if month_first else (b, a)
        if not (1 <= day <= 31 and 1 <= month <= 12):
            return m.group()
        return self.spoken_date(day, month, _full_year(m["y"]), m)

    def _month_day(self, m: re.Match[str], tail: str) -> str:
        month = self.v.month_aliases[m["month"].lower()]
        day = int(m["d"])
        if not 1 <= day <= 31:
            return m.group()
        year = int(m["y"]) if m["y"] else None
        out = f"{self.v.months[month - 1]} {self.ordinal(day)}"
        return out + (f", {self.year(year)}" if year is not None else "")

    def _day_month(self, m: re.Match[str], tail: str) -> str:
        day, month = int(m["d"]), self.v.month_aliases[m["month"].lower()]
        if not 1 <= day <= 31:
            return m.group()
        before = _previous_words(m.string, m.start(), 1)
        out = f"the {self.ordinal(day)} of {self.v.months[month - 1]}"
        if before == ["the"]:
            out = out[len("the "):]
        return out + (f", {self.year(int(m['y']))}" if m["y"] else "")

    def _month_year(self, m: re.Match[str], tail: str) -> str:
        month = self.v.month_aliases[m["month"].lower()]
        return f"{self.v.months[month - 1]} {self.year(int(m['y']))}"

    def _clock(self, m: re.Match[str], tail: str) -> str:
        groups = m.groupdict()
        hour = int(groups["h"])
        minute = int(groups.get("m") or groups.get("m2") or 0)
        second = int(groups["s"]) if groups.get("s") else None
        ampm = (groups.get("ap") or "").upper()
        if hour > (12 if ampm else 24) or minute > 59 or (second or 0) > 59:
            return m.group()
        v = self.v
        if self.de:
            out = f"{'ein' if hour == 1 else self.words(hour)} {v.hour_word}"
            if minute:
                out += f" {self.words(minute)}"
        else:
            out = self.words(hour)
            if minute:
                out += f" oh {self.words(minute)}" if minute < 10 else f" {self.words(minute)}"
            if ampm:
                out += f" {ampm} M"
            elif not minute:
                out += f" {v.o_clock}" if 1 <= hour <= 12 else " hundred"
        if second is not None:
            out += f" {v.and_} {self.count(str(second), v.seconds)}"
        return out

    def _ratio(self, m: re.Match[str], tail: str) -> str:
        """What is left of "a:b" after the times: a score or a ratio ("2:1", "16:9")."""
        return f"{self.words(int(m['a']))} {self.v.ratio} {self.words(int(m['b']))}"

    def _money(self, m: re.Match[str], tail: str) -> str:
        currency: Currency = _lookup(self.v.currencies, m["cur"].strip())
        sign = m["sign"] or ""
        minus = f"{self.v.minus} " if sign else ""
        groups = m.groupdict()
        per = self._per(m)
        if groups.get("amt2"):
            low, high = _money_value(m["amt"]), _money_value(m["amt2"])
            return (f"{minus}{self.words(low)} {self.v.to} "
                    f"{self.count(_plain(high), currency.unit)}{per}")
        value = _money_value(m["amt"])
        if m["scale"]:
            scale: Noun = _lookup(self.v.scales, m["scale"])
            return f"{minus}{self.count(_plain(value), scale)} {currency.unit.many}{per}"
        whole = int(value)
        cents = int((value - whole) * 100)
        if value != whole and (currency.sub is None or value * 100 != int(value * 100)):
            return f"{minus}{self.words(value)} {currency.unit.many}{per}"
        if not cents:
            return f"{minus}{self.count(str(whole), currency.unit)}{per}"
        assert currency.sub is not None
        sub = self.count(str(cents), currency.sub)
        if not whole:
            return f"{minus}{sub}{per}"
        if self.de:  # "fünf Euro fünfzig"
            return f"{minus}{self.count(str(whole), currency.unit)} {self.words(cents)}{per}"
        return f"{minus}{self.count(str(whole), currency.unit)} {self.v.and_} {sub}{per}"

    def _per(self, m: re.Match[str]) -> str:
        word = m.groupdict().get("per")
        if not word:
            return ""
        noun = self.v.units.get(word) or self.v.units.get(word + ".")
        return f" {self.v.per} {noun.one if noun else word}"

    def _quantity(self, m: re.Match[str], noun: Noun) -> str:
        if m["b"]:
            return (f"{self.number(m['a'], m['sign'] or '')} {self.v.to} "
                    f"{self.number(m['b'])} {noun.many}")
        return self.count(m["a"], noun, m["sign"] or "")

    def _degrees(self, m: re.Match[str], tail: str) -> str:
        out = self._quantity(m, self.v.degree)
        unit = m["unit"]
        if unit:
            out += f" {self.v.celsius if unit == 'C' else self.v.fahrenheit}"
        return out

    def _percent(self, m: re.Match[str], tail: str) -> str:
        word = self.v.percent if m["unit"] == "%" else self.v.per_mille
        return self._quantity(m, Noun(word, word))

    def _unit(self, m: re.Match[str], tail: str) -> str:
        return self._quantity(m, _lookup(self.v.units, m["unit"])) + self._per(m)

    def _decade(self, m: re.Match[str], tail: str) -> str:
        """1990s, the 80s → nineteen nineties, eighties; 90er → neunziger."""
        digits, suffix = m["a"], m["s"]
        if self.de != (suffix != "s") or not digits.endswith("0"):
            return m.group()
        if len(digits) == 2 and not self.de:
            before = _previous_words(m.string, m.start(), 1)
            if before not in (["the"], ["early"], ["late"], ["mid"]):
                return m.group()  # "30s" is thirty seconds
        spoken = self.year(int(digits)) if len(digits) == 4 else self.words(int(digits))
        if self.de:
            return spoken + suffix
        return spoken[:-1] + "ies" if spoken.endswith("y") else spoken + "s"

    def _english_ordinal(self, m: re.Match[str], tail: str) -> str:
        number = int(m["n"])
        expected = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
        if 10 <= number % 100 <= 20:
            expected = "th"
        if m["suffix"] != expected:
            return m.group()
        return self.ordinal(number)

    def _german_ordinal(self, m: re.Match[str], tail: str) -> str:
        ending = self.german_ending(m.string, m.start(), m.end())
        return self.german_ordinal(int(m["n"]), ending)

    def _german_ordinal_at_end(self, m: re.Match[str], tail: str) -> str:
        """"Heute ist der 3." — a final number after an article is an ordinal, and its
        dot is the sentence's."""
        before = _previous_words(m.string, m.start(), 1)
        if not (tail.startswith(".") and before and before[0] in _DE_EN_ENDING | _DE_ARTICLES):
            return m.group()
        return self.german_ordinal(int(m["n"]), self.german_ending(m.string, m.start(), m.end()))

    def _fraction(self, m: re.Match[str], tail: str) -> str:
        key = f"{m['a']}/{m['b']}"
        if key in self.v.fractions:
            return self.v.fractions[key]
        a, b = self.words(int(m["a"])), self.words(int(m["b"]))
        if key == "24/7":
            return f"{a} {b}"
        return f"{a} {self.v.slash} {b}"

    def _dotted(self, m: re.Match[str], tail: str) -> str:
        """Versions and addresses: 3.5.1, 192.168.1.10 (but a German 1.000.000 is a
        number)."""
        text = m.group()
        if self.de and re.fullmatch(r"\d{1,3}(?:\.\d{3})+", text):
            return text
        parts = text.split(".")
        joiner = self.v.dot if len(parts) == 4 or self.de else self.v.point  # "Version 3 Punkt 5"
        return f" {joiner} ".join(self.words(int(p)) for p in parts)

    def _range(self, m: re.Match[str], tail: str) -> str:
        a, b = self.value(m["a"]), self.value(m["b"])
        if all(_looks_like_year(x) for x in (m["a"], m["b"])):
            return f"{self.year(int(a))} {self.v.to} {self.year(int(b))}"
        return f"{self.number(m['a'])} {self.v.to} {self.number(m['b'])}"

    def _scaled(self, m: re.Match[str], tail: str) -> str:
        return self.count(m["a"], _lookup(self.v.scales, m["scale"]))

    def _year_in_context(self, m: re.Match[str], tail: str) -> str:
        year = int(m["y"])
        if self.de and 1100 <= year <= 1999:  # "1969", "1500 Leute": neunzehnhundert…
            return self.year(year)
        before = _previous_words(m.string, m.start(), 1)
        if before and before[0] in self.v.year_after and _looks_like_year(m["y"]):
            return self.year(year)
        return m.group()

    def _german_one(self, m: re.Match[str], tail: str) -> str:
        """"1 Person" → "eine Person", "1 Kind" → "ein Kind", "1 Uhr" → "ein Uhr"."""
        before = m.string[: m.start()].split()
        previous = before[-1] if before else ""
        # "Nummer 1 Hit", "Kapitel 1 Einleitung": after a noun, 1 names something.
        if previous[:1].isupper() and (len(before) > 1 or previous.lower() in _DE_NUMBERED):
            return "eins "
        noun = _next_word(m.string, m.end()).lower()
        return "eine " if _feminine(noun) and noun != "uhr" else "ein "

    def _number(self, m: re.Match[str], tail: str) -> str:
        return self.number(m["a"], m["sign"] or "")

    def _digits(self, m: re.Match[str], tail: str) -> str:
        return self.words(int(m.group()))


def _feminine(noun: str) -> bool:
    """A German noun's gender, guessed from its ending (good enough for "eine Minute",
    "die zweite Auflage"; wrong guesses still read as German)."""
    if noun in _DE_FEMININE:
        return True
    return noun.endswith(_DE_FEMININE_ENDINGS) and noun not in _DE_NOT_FEMININE


def _run(rule: Rule, tail: str, m: re.Match[str]) -> str:
    """A rule's words, apart from their neighbours: "H2O" → "H two O"."""
    words = rule(m, tail)
    text, start, end = m.string, m.start(), m.end()
    if words == m.group() or not words:
        return words
    before = " " if start > 0 and text[start - 1].isalnum() and words[0].isalnum() else ""
    after = " " if end < len(text) and text[end].isalnum() and words[-1].isalnum() else ""
    return before + words + after


def _full_year(text: str | None) -> int | None:
    if text is None:
        return None
    year = int(text)
    if len(text) == 2:
        year += 2000 if year < 70 else 1900
    return year


def _looks_like_year(text: str) -> bool:
    return len(text) == 4 and text.isdigit() and 1000 <= int(text) <= 2099


def _money_value(text: str) -> Decimal:
    """"1,000.50" / "1.000,50" / "5,5" → Decimal; see `amount` in _Rules."""
    head, sep, last = text, "", ""
    for i in range(len(text) - 1, -1, -1):
        if text[i] in ".,":
            head, sep, last = text[:i], text[i], text[i + 1:]
            break
    if sep and len(last) < 3:
        return Decimal(head.replace(".", "").replace(",", "") + "." + last)
    return Decimal(text.replace(".", "").replace(",", ""))


def _plain(value: Decimal) -> str:
    """A Decimal written so that `_Rules.value` reads it back in either language."""
    if value == value.to_integral_value():
        return str(int(value))
    return str(value.normalize())
