"""The places a headline names, as countries: what tells two stories of one kind apart.

Two reports share a subject ("COVID-19", "prime minister", "Supreme Court")
and still tell different stories when one happens in one country and the
other in another; and two reports that share only a place (a bus crash in
Cuba, flight restrictions to Cuba) tell different stories too. The ranking
uses both (see `related.scoring`). A place is known by name: countries, the
words for their people, and the states, provinces and large cities news most
often names, each standing for its country (a US state for the United
States), so that "Wisconsin" and "US" agree. Names that are also common
words or people's names ("Georgia", "Jordan", "Chad") are left out: a
missed place costs nothing, a false one separates a story. "US" is the
exception: headlines are folded to lower case, and the pronoun is rare in
headlines while the country is the commonest place English news names.

Pure: no database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

_GROUPS: Mapping[str, str] = {
    "us": """us|u s|usa|united states|america|american|americans|washington|washington dc|
        new york|new york city|nyc|los angeles|chicago|las vegas|san francisco|
        alabama|alaska|arizona|arkansas|california|colorado|connecticut|delaware|florida|
        hawaii|idaho|illinois|indiana|iowa|kansas|kentucky|louisiana|maine|maryland|
        massachusetts|michigan|minnesota|mississippi|missouri|montana|nebraska|nevada|
        new hampshire|new jersey|new mexico|north carolina|north dakota|ohio|oklahoma|
        oregon|pennsylvania|rhode island|south carolina|south dakota|tennessee|texas|utah|
        vermont|virginia|west virginia|wisconsin|wyoming|californian|texan""",
    "pr": "puerto rico|puerto rican",
    "uk": """uk|u k|united kingdom|britain|great britain|british|england|english|scotland|
        scottish|wales|welsh|northern ireland|london|manchester|birmingham|edinburgh""",
    "ca": "canada|canadian|toronto|montreal|vancouver|ottawa|ontario|quebec|british columbia",
    "au": """australia|australian|sydney|melbourne|brisbane|queensland|new south wales|
        canberra|perth""",
    "nz": "new zealand|christchurch|auckland|wellington",
    "cn": "china|chinese|beijing|wuhan|shanghai|hubei|guangdong",
    "hk": "hong kong",
    "tw": "taiwan|taiwanese",
    "jp": "japan|japanese|tokyo|okinawa",
    "kr": "south korea|south korean|korea|korean|seoul",
    "kp": "north korea|north korean|pyongyang",
    "in": "india|indian|new delhi|delhi|mumbai|kerala|tamil nadu|goa|mysore",
    "pk": "pakistan|pakistani|islamabad|karachi",
    "bd": "bangladesh|bangladeshi|dhaka|chittagong",
    "af": "afghanistan|afghan|kabul",
    "ir": "iran|iranian|tehran",
    "iq": "iraq|iraqi|baghdad",
    "sy": "syria|syrian|damascus|aleppo",
    "il": "israel|israeli|jerusalem|tel aviv",
    "sa": "saudi arabia|saudi|riyadh",
    "ye": "yemen|yemeni|aden|sanaa",
    "om": "oman|omani",
    "eg": "egypt|egyptian|cairo",
    "ly": "libya|libyan|tripoli",
    "tn": "tunisia|tunisian",
    "tr": "turkey|turkish|ankara|istanbul|izmir",
    "gr": "greece|greek|athens",
    "ru": "russia|russian|moscow|saint petersburg",
    "ua": "ukraine|ukrainian|kyiv|kiev",
    "by": "belarus|belarusian|belarussian|minsk",
    "pl": "poland|polish|warsaw|gdansk|krakow",
    "de": "germany|german|berlin|munich|bavaria|bavarian",
    "fr": "france|french|paris|marseille|lyon",
    "es": "spain|spanish|madrid|barcelona|catalonia|catalan",
    "pt": "portugal|portuguese|lisbon|azores",
    "it": "italy|italian|rome|milan",
    "nl": "netherlands|dutch|amsterdam",
    "be": "belgium|belgian|brussels",
    "ch": "switzerland|swiss|geneva|zurich",
    "at": "austria|austrian|vienna",
    "se": "sweden|swedish|stockholm",
    "no": "norway|norwegian|oslo",
    "dk": "denmark|danish|copenhagen",
    "fi": "finland|finnish|helsinki",
    "ie": "ireland|irish|dublin",
    "hu": "hungary|hungarian|budapest",
    "cz": "czech republic|czechia|czech|prague",
    "sk": "slovakia|slovak|bratislava",
    "rs": "serbia|serbian|belgrade",
    "ro": "romania|romanian|bucharest",
    "bg": "bulgaria|bulgarian",
    "mx": "mexico|mexican",
    "cu": "cuba|cuban|havana",
    "br": "brazil|brazilian|rio de janeiro|sao paulo",
    "ar": "argentina|argentine|argentinian|buenos aires",
    "cl": "chile|chilean",
    "co": "colombia|colombian|bogota",
    "ve": "venezuela|venezuelan|caracas",
    "pe": "peru|peruvian|lima",
    "bo": "bolivia|bolivian",
    "ph": "philippines|philippine|filipino|manila|mindanao",
    "id": "indonesia|indonesian|jakarta",
    "my": "malaysia|malaysian|kuala lumpur",
    "sg": "singapore|singaporean",
    "th": "thailand|thai|bangkok",
    "vn": "vietnam|vietnamese|hanoi",
    "mm": "myanmar|burma|burmese",
    "np": "nepal|nepalese",
    "lk": "sri lanka|sri lankan",
    "ws": "samoa|samoan",
    "to": "tonga|tongan",
    "fj": "fiji|fijian",
    "za": "south africa|south african|johannesburg|cape town",
    "ng": "nigeria|nigerian|lagos",
    "ke": "kenya|kenyan|nairobi",
    "et": "ethiopia|ethiopian|addis ababa",
    "zw": "zimbabwe|zimbabwean|harare",
    "na": "namibia|namibian",
    "bi": "burundi|burundian",
    "ss": "south sudan|south sudanese",
    "sd": "sudan|sudanese|khartoum",
    "bj": "benin|beninese",
    "gh": "ghana|ghanaian",
    "so": "somalia|somali|mogadishu",
    "cd": "congo|congolese|kinshasa",
    "qa": "qatar|qatari|doha",
    "ae": "united arab emirates|uae|emirati|dubai|abu dhabi",
    "lb": "lebanon|lebanese|beirut",
    "aq": "antarctica|antarctic",
}

PLACES: Mapping[str, str] = {
    name.strip(): country
    for country, names in _GROUPS.items()
    for name in names.split("|")
    if name.strip()
}
"""Place names (folded: lower case, no accents or punctuation) and the country each stands for."""


def _sizes(names: Iterable[str]) -> dict[str, tuple[int, ...]]:
    """Each first word's name lengths in words, longest first (one pass: this runs at import)."""
    lengths: dict[str, set[int]] = {}
    for name in names:
        words = name.split()
        lengths.setdefault(words[0], set()).add(len(words))
    return {first: tuple(sorted(found, reverse=True)) for first, found in lengths.items()}


_SIZES: Mapping[str, tuple[int, ...]] = _sizes(PLACES)
"""The lengths in words of the place names each word starts, longest first: most words of a
headline start none, and are passed over with one lookup (the ranking looks at the headline
of every candidate)."""


def countries(title_key: str) -> frozenset[str]:
    """The countries a normalised headline (`references.normalise`) names.

    The longest name wins where names overlap ("new south wales" is Australia,
    not Wales; "south sudan" is not Sudan).
    """
    words = title_key.split()
    found: set[str] = set()
    start = 0
    while start < len(words):
        for size in _SIZES.get(words[start], ()):
            if size > len(words) - start:
                continue
            country = PLACES.get(" ".join(words[start : start + size]))
            if country is not None:
                found.add(country)
                start += size
                break
        else:
            start += 1
    return frozenset(found)


def is_place(term: str) -> bool:
    """Whether a vector term (folded, plurals folded) is a place name."""
    return term in PLACES or term + "s" in PLACES
