"""The words normalisation speaks, per language: units, currencies, months,
abbreviations and symbols. Number words themselves come from `num2words`; this module
only holds the nouns and phrases around them, so a language is added here as data."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Noun:
    """A counted word: singular and plural, and (German) whether "1" is "eine"."""

    one: str
    many: str
    feminine: bool = False


@dataclass(frozen=True)
class Currency:
    unit: Noun
    sub: Noun | None = None  # cents, pence; None when amounts are read as decimals (yen)


@dataclass(frozen=True)
class Vocabulary:
    code: str  # the language's primary subtag, also num2words' language
    point: str  # decimal separator read aloud
    dot: str  # the separator of an IP address
    to: str  # ranges: "5 to 10"
    ratio: str  # scores and ratios: "2:1"
    per: str  # km/h, €/kWh
    percent: str
    per_mille: str
    degree: Noun
    celsius: str
    fahrenheit: str
    plus: str
    minus: str
    equals: str
    at: str
    and_: str
    or_: str
    slash: str
    times: str
    less_than: str
    more_than: str
    plus_minus: str
    o_clock: str  # English "o'clock"; German uses `hour_word` around the hour
    hour_word: str  # German "Uhr"
    seconds: Noun
    months: tuple[str, ...]
    month_aliases: dict[str, int]  # lower-case spelling (incl. abbreviations) → 1..12
    units: dict[str, Noun]  # symbol → noun, matched case-sensitively after a number
    currencies: dict[str, Currency]  # symbol or ISO code → currency
    scales: dict[str, Noun]  # words/abbreviations after a number: million, Mio.
    abbreviations: tuple[tuple[str, str], ...]  # regex (word-bounded at the start) → words
    fractions: dict[str, str]  # "1/2" → one half
    year_after: frozenset[str]  # lower-case words after which a 4-digit number is a year
    and_or: tuple[str, str] = ("", "")  # "and/or" → its spoken form


_MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December")
_MONTHS_DE = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August",
              "September", "Oktober", "November", "Dezember")


def _aliases(names: tuple[str, ...], extra: dict[str, int]) -> dict[str, int]:
    out = {name.lower(): i + 1 for i, name in enumerate(names)}
    out.update(extra)
    return out


EN = Vocabulary(
    code="en",
    point="point",
    dot="dot",
    to="to",
    ratio="to",
    per="per",
    percent="percent",
    per_mille="per mille",
    degree=Noun("degree", "degrees"),
    celsius="Celsius",
    fahrenheit="Fahrenheit",
    plus="plus",
    minus="minus",
    equals="equals",
    at="at",
    and_="and",
    or_="or",
    slash="slash",
    times="times",
    less_than="less than",
    more_than="more than",
    plus_minus="plus or minus",
    o_clock="o'clock",
    hour_word="",
    seconds=Noun("second", "seconds"),
    months=_MONTHS_EN,
    month_aliases=_aliases(_MONTHS_EN, {
        "jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9,
        "sept": 9, "oct": 10, "nov": 11, "dec": 12}),
    units={
        "km/h": Noun("kilometer per hour", "kilometers per hour"),
        "m/s": Noun("meter per second", "meters per second"),
        "mph": Noun("mile per hour", "miles per hour"),
        "kWh": Noun("kilowatt hour", "kilowatt hours"),
        "MWh": Noun("megawatt hour", "megawatt hours"),
        "Wh": Noun("watt hour", "watt hours"),
        "kW": Noun("kilowatt", "kilowatts"),
        "MW": Noun("megawatt", "megawatts"),
        "W": Noun("watt", "watts"),
        "kV": Noun("kilovolt", "kilovolts"),
        "V": Noun("volt", "volts"),
        "mA": Noun("milliampere", "milliamperes"),
        "A": Noun("ampere", "amperes"),
        "km²": Noun("square kilometer", "square kilometers"),
        "m²": Noun("square meter", "square meters"),
        "m³": Noun("cubic meter", "cubic meters"),
        "km": Noun("kilometer", "kilometers"),
        "cm": Noun("centimeter", "centimeters"),
        "mm": Noun("millimeter", "millimeters"),
        "m": Noun("meter", "meters"),
        "mi": Noun("mile", "miles"),
        "ft": Noun("foot", "feet"),
        "kg": Noun("kilogram", "kilograms"),
        "mg": Noun("milligram", "milligrams"),
        "g": Noun("gram", "grams"),
        "lbs": Noun("pound", "pounds"),
        "lb": Noun("pound", "pounds"),
        "oz": Noun("ounce", "ounces"),
        "ml": Noun("milliliter", "milliliters"),
        "l": Noun("liter", "liters"),
        "L": Noun("liter", "liters"),
        "kHz": Noun("kilohertz", "kilohertz"),
        "MHz": Noun("megahertz", "megahertz"),
        "GHz": Noun("gigahertz", "gigahertz"),
        "Hz": Noun("hertz", "hertz"),
        "dB": Noun("decibel", "decibels"),
        "KB": Noun("kilobyte", "kilobytes"),
        "kB": Noun("kilobyte", "kilobytes"),
        "MB": Noun("megabyte", "megabytes"),
        "GB": Noun("gigabyte", "gigabytes"),
        "TB": Noun("terabyte", "terabytes"),
        "ms": Noun("millisecond", "milliseconds"),
        "min": Noun("minute", "minutes"),
        "hrs": Noun("hour", "hours"),
        "hr": Noun("hour", "hours"),
        "h": Noun("hour", "hours"),
        "sec": Noun("second", "seconds"),
        "s": Noun("second", "seconds"),
    },
    currencies={
        "$": Currency(Noun("dollar", "dollars"), Noun("cent", "cents")),
        "USD": Currency(Noun("dollar", "dollars"), Noun("cent", "cents")),
        "€": Currency(Noun("euro", "euros"), Noun("cent", "cents")),
        "EUR": Currency(Noun("euro", "euros"), Noun("cent", "cents")),
        "£": Currency(Noun("pound", "pounds"), Noun("penny", "pence")),
        "GBP": Currency(Noun("pound", "pounds"), Noun("penny", "pence")),
        "CHF": Currency(Noun("Swiss franc", "Swiss francs"), Noun("centime", "centimes")),
        "¥": Currency(Noun("yen", "yen")),
        "JPY": Currency(Noun("yen", "yen")),
    },
    scales={
        "thousand": Noun("thousand", "thousand"),
        "million": Noun("million", "million"),
        "billion": Noun("billion", "billion"),
        "trillion": Noun("trillion", "trillion"),
        "bn": Noun("billion", "billion"),
    },
    abbreviations=(
        (r"Mr\.", "Mister"),
        (r"Mrs\.", "Missus"),
        (r"Ms\.", "Miz"),
        (r"Dr\.", "Doctor"),
        (r"Prof\.", "Professor"),
        (r"Jr\.", "Junior"),
        (r"Sr\.", "Senior"),
        (r"Mt\.", "Mount"),
        (r"[Ee]\.\s?g\.?(?!\w)", "for example"),
        (r"[Ii]\.\s?e\.?(?!\w)", "that is"),
        (r"etc\b\.?", "et cetera"),
        (r"vs\b\.?", "versus"),
        (r"approx\.", "approximately"),
        (r"[Nn]o\.(?=\s?\d)", "number"),
        (r"[Nn]os\.(?=\s?\d)", "numbers"),
    ),
    fractions={"1/2": "one half", "1/3": "one third", "2/3": "two thirds",
               "1/4": "one quarter", "3/4": "three quarters"},
    year_after=frozenset("in since from until till by of before after around circa year "
                         "early late mid during".split()),
    and_or=("and/or", "and or"),
)

DE = Vocabulary(
    code="de",
    point="Komma",
    dot="Punkt",
    to="bis",
    ratio="zu",
    per="pro",
    percent="Prozent",
    per_mille="Promille",
    degree=Noun("Grad", "Grad"),
    celsius="Celsius",
    fahrenheit="Fahrenheit",
    plus="plus",
    minus="minus",
    equals="gleich",
    at="ät",
    and_="und",
    or_="oder",
    slash="Schrägstrich",
    times="mal",
    less_than="weniger als",
    more_than="mehr als",
    plus_minus="plus minus",
    o_clock="",
    hour_word="Uhr",
    seconds=Noun("Sekunde", "Sekunden", feminine=True),
    months=_MONTHS_DE,
    month_aliases=_aliases(_MONTHS_DE, {"jänner": 1, "maerz": 3}),
    units={
        "km/h": Noun("Kilometer pro Stunde", "Kilometer pro Stunde"),
        "m/s": Noun("Meter pro Sekunde", "Meter pro Sekunde"),
        "mph": Noun("Meile pro Stunde", "Meilen pro Stunde", feminine=True),
        "kWh": Noun("Kilowattstunde", "Kilowattstunden", feminine=True),
        "MWh": Noun("Megawattstunde", "Megawattstunden", feminine=True),
        "Wh": Noun("Wattstunde", "Wattstunden", feminine=True),
        "kW": Noun("Kilowatt", "Kilowatt"),
        "MW": Noun("Megawatt", "Megawatt"),
        "W": Noun("Watt", "Watt"),
        "kV": Noun("Kilovolt", "Kilovolt"),
        "V": Noun("Volt", "Volt"),
        "mA": Noun("Milliampere", "Milliampere"),
        "A": Noun("Ampere", "Ampere"),
        "km²": Noun("Quadratkilometer", "Quadratkilometer"),
        "m²": Noun("Quadratmeter", "Quadratmeter"),
        "m³": Noun("Kubikmeter", "Kubikmeter"),
        "km": Noun("Kilometer", "Kilometer"),
        "cm": Noun("Zentimeter", "Zentimeter"),
        "mm": Noun("Millimeter", "Millimeter"),
        "m": Noun("Meter", "Meter"),
        "kg": Noun("Kilogramm", "Kilogramm"),
        "mg": Noun("Milligramm", "Milligramm"),
        "g": Noun("Gramm", "Gramm"),
        "ml": Noun("Milliliter", "Milliliter"),
        "l": Noun("Liter", "Liter"),
        "L": Noun("Liter", "Liter"),
        "kHz": Noun("Kilohertz", "Kilohertz"),
        "MHz": Noun("Megahertz", "Megahertz"),
        "GHz": Noun("Gigahertz", "Gigahertz"),
        "Hz": Noun("Hertz", "Hertz"),
        "dB": Noun("Dezibel", "Dezibel"),
        "KB": Noun("Kilobyte", "Kilobyte"),
        "kB": Noun("Kilobyte", "Kilobyte"),
        "MB": Noun("Megabyte", "Megabyte"),
        "GB": Noun("Gigabyte", "Gigabyte"),
        "TB": Noun("Terabyte", "Terabyte"),
        "ms": Noun("Millisekunde", "Millisekunden", feminine=True),
        "min": Noun("Minute", "Minuten", feminine=True),
        "Min.": Noun("Minute", "Minuten", feminine=True),
        "Std.": Noun("Stunde", "Stunden", feminine=True),
        "Sek.": Noun("Sekunde", "Sekunden", feminine=True),
        "h": Noun("Stunde", "Stunden", feminine=True),
        "sek": Noun("Sekunde", "Sekunden", feminine=True),
        "s": Noun("Sekunde", "Sekunden", feminine=True),
    },
    currencies={
        "$": Currency(Noun("Dollar", "Dollar"), Noun("Cent", "Cent")),
        "USD": Currency(Noun("Dollar", "Dollar"), Noun("Cent", "Cent")),
        "€": Currency(Noun("Euro", "Euro"), Noun("Cent", "Cent")),
        "EUR": Currency(Noun("Euro", "Euro"), Noun("Cent", "Cent")),
        "£": Currency(Noun("Pfund", "Pfund"), Noun("Penny", "Pence")),
        "GBP": Currency(Noun("Pfund", "Pfund"), Noun("Penny", "Pence")),
        "CHF": Currency(Noun("Franken", "Franken"), Noun("Rappen", "Rappen")),
        "¥": Currency(Noun("Yen", "Yen")),
        "JPY": Currency(Noun("Yen", "Yen")),
    },
    scales={
        "Tsd.": Noun("tausend", "tausend"),
        "Mio.": Noun("Million", "Millionen", feminine=True),
        "Mrd.": Noun("Milliarde", "Milliarden", feminine=True),
        "Million": Noun("Million", "Million", feminine=True),
        "Millionen": Noun("Millionen", "Millionen", feminine=True),
        "Milliarde": Noun("Milliarde", "Milliarde", feminine=True),
        "Milliarden": Noun("Milliarden", "Milliarden", feminine=True),
    },
    abbreviations=(
        (r"z\.\s?B\.?(?!\w)", "zum Beispiel"),
        (r"d\.\s?h\.?(?!\w)", "das heißt"),
        (r"u\.\s?a\.?(?!\w)", "unter anderem"),
        (r"o\.\s?ä\.?(?!\w)", "oder Ähnliches"),
        (r"z\.\s?T\.?(?!\w)", "zum Teil"),
        (r"u\.\s?U\.?(?!\w)", "unter Umständen"),
        (r"usw\b\.?", "und so weiter"),
        (r"bzw\b\.?", "beziehungsweise"),
        (r"ca\.", "circa"),
        (r"Nr\.", "Nummer"),
        (r"Dr\.", "Doktor"),
        (r"Prof\.", "Professor"),
        (r"ggf\.", "gegebenenfalls"),
        (r"evtl\.", "eventuell"),
        (r"inkl\.", "inklusive"),
        (r"exkl\.", "exklusive"),
        (r"vgl\.", "vergleiche"),
        (r"bspw\.", "beispielsweise"),
        (r"Hr\.", "Herr"),
        (r"Str\.", "Straße"),
        (r"Tel\.", "Telefon"),
        (r"max\.", "maximal"),
        (r"mind\.", "mindestens"),
    ),
    fractions={"1/2": "ein halb", "1/3": "ein Drittel", "2/3": "zwei Drittel",
               "1/4": "ein Viertel", "3/4": "drei Viertel"},
    year_after=frozenset("im jahr jahre jahres seit bis von vor nach ab um anfang ende mitte "
                         "sommer winter frühjahr herbst".split()),
    and_or=("und/oder", "und oder"),
)

VOCABULARIES: dict[str, Vocabulary] = {v.code: v for v in (EN, DE)}
