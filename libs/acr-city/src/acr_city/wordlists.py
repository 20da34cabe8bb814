"""Word lists for generated street names and the fixed points of interest."""

from __future__ import annotations

FIRST: tuple[str, ...] = (
    "Alder", "Amber", "Anchor", "Apple", "Arbor", "Ash", "Aspen", "Badger", "Barley", "Bay",
    "Beacon", "Bear", "Beech", "Bell", "Birch", "Black", "Bloom", "Blue", "Bramble", "Brick",
    "Bright", "Broad", "Bronze", "Brown", "Candle", "Castle", "Cedar", "Chapel", "Cherry", "Chestnut",
    "Church", "Clay", "Cliff", "Clover", "Cobble", "Copper", "Coral", "Corn", "Cotton", "Crane",
    "Crystal", "Daisy", "Dawn", "Deer", "Dove", "Eagle", "East", "Elder", "Elm", "Ember",
    "Falcon", "Fern", "Finch", "Fir", "Flax", "Fox", "Frost", "Garnet", "Ginger", "Glass",
    "Gold", "Granite", "Green", "Grey", "Hare", "Harbour", "Hawk", "Hazel", "Heath", "Heron",
    "Holly", "Honey", "Iron", "Ivy", "Jasmine", "Juniper", "Kestrel", "King", "Lantern", "Lark",
    "Laurel", "Lemon", "Lily", "Lime", "Linden", "Lynx", "Maple", "Marble", "Market", "Meadow",
    "Mill", "Mint", "Moss", "North", "Nutmeg", "Oak", "Olive", "Orchard", "Otter", "Owl",
    "Pearl", "Pebble", "Pepper", "Pine", "Plum", "Poplar", "Poppy", "Queen", "Quarry", "Raven",
    "Red", "Reed", "Robin", "Rose", "Rowan", "Ruby", "Rye", "Saffron", "Sage", "Salmon",
    "Sand", "Silver", "Sloe", "Snow", "South", "Sparrow", "Spring", "Spruce", "Star", "Stone",
    "Summer", "Swallow", "Swan", "Thistle", "Thorn", "Tide", "Timber", "Tulip", "Velvet", "Violet",
    "Walnut", "West", "Wheat", "White", "Willow", "Winter", "Wolf", "Wren", "Yew", "Zephyr",
)

SECOND: tuple[str, ...] = (
    "bank", "bourne", "bridge", "brook", "bury", "by", "combe", "croft", "dale", "den",
    "field", "ford", "gate", "glen", "grove", "ham", "haven", "hill", "holm", "hurst",
    "land", "lea", "ley", "marsh", "mead", "mere", "moor", "mount", "ness", "port",
    "ridge", "shaw", "side", "stead", "stoke", "thorpe", "ton", "vale", "well", "wick",
    "wood", "worth",
)

TYPES_BY_CLASS: tuple[tuple[str, ...], ...] = (
    ("Street", "Lane", "Way", "Close", "Drive", "Court", "Place", "Crescent", "Gardens",
     "Terrace", "Row", "Walk", "Grove", "Mews", "Rise", "Passage"),
    ("Avenue", "Boulevard", "Road", "Parade"),
    ("Highway", "Expressway", "Parkway"),
)

# (name, kind, x, y) with x, y in [-1, 1] as a fraction of the half-extent of the city.
POIS: tuple[tuple[str, str, float, float], ...] = (
    ("Central Station", "station", 0.02, 0.03),
    ("City Airport", "airport", 0.88, 0.86),
    ("Olympic Stadium", "stadium", -0.12, 0.35),
    ("General Hospital", "hospital", 0.18, -0.22),
    ("Children's Hospital", "hospital", -0.3, -0.1),
    ("Northern Hospital", "hospital", 0.05, 0.75),
    ("City University", "university", -0.05, -0.08),
    ("Technical University", "university", -0.62, 0.12),
    ("Ferry Terminal", "ferry", 0.1, -0.9),
    ("Concert Hall", "culture", -0.02, 0.12),
    ("Opera House", "culture", -0.1, 0.2),
    ("Cathedral", "church", 0.08, -0.04),
    ("Art Museum", "museum", 0.12, 0.08),
    ("Natural History Museum", "museum", -0.18, 0.02),
    ("City Zoo", "zoo", 0.42, -0.55),
    ("Central Library", "library", 0.0, 0.08),
    ("Ice Hall", "arena", -0.2, 0.4),
    ("Exhibition Centre", "venue", -0.45, 0.3),
    ("Bus Station", "station", 0.05, 0.0),
    ("East Station", "station", 0.6, 0.1),
    ("West Station", "station", -0.7, -0.05),
    ("City Hall", "government", 0.07, -0.06),
    ("Botanical Garden", "park", -0.08, -0.15),
)
