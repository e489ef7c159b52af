"""English sentence generator: everyday sentences, names, and spoken-form numbers, dates, times, money.

A small grammar over hand-written word lists plus templates for the ITN-relevant classes. All output is
lower case without punctuation except the apostrophe, which is what the model learns to write.
"""

# The word lists below are data; their lines stay long.
# ruff: noqa: E501

from __future__ import annotations

import random
from collections.abc import Callable

from recipes.bundled_model import spoken_en as sp

FIRST_NAMES = [
    "james",
    "mary",
    "john",
    "patricia",
    "robert",
    "jennifer",
    "michael",
    "linda",
    "william",
    "elizabeth",
    "david",
    "barbara",
    "richard",
    "susan",
    "joseph",
    "jessica",
    "thomas",
    "sarah",
    "charles",
    "karen",
    "daniel",
    "nancy",
    "matthew",
    "lisa",
    "anthony",
    "betty",
    "mark",
    "margaret",
    "donald",
    "sandra",
    "steven",
    "ashley",
    "paul",
    "kimberly",
    "andrew",
    "emily",
    "joshua",
    "donna",
    "kenneth",
    "michelle",
    "kevin",
    "carol",
    "brian",
    "amanda",
    "george",
    "melissa",
    "edward",
    "deborah",
    "ronald",
    "stephanie",
    "timothy",
    "rebecca",
    "jason",
    "sharon",
    "jeffrey",
    "laura",
    "ryan",
    "cynthia",
    "jacob",
    "kathleen",
    "gary",
    "amy",
    "nicholas",
    "angela",
    "eric",
    "helen",
    "jonathan",
    "anna",
    "stephen",
    "brenda",
    "larry",
    "pamela",
    "justin",
    "nicole",
    "scott",
    "emma",
    "brandon",
    "samantha",
    "benjamin",
    "katherine",
    "samuel",
    "christine",
    "frank",
    "debra",
    "gregory",
    "rachel",
    "raymond",
    "catherine",
    "alexander",
    "carolyn",
    "patrick",
    "janet",
    "jack",
    "ruth",
    "dennis",
    "maria",
    "jerry",
    "heather",
    "tyler",
    "diane",
    "aaron",
    "virginia",
    "jose",
    "julie",
    "henry",
    "joyce",
    "adam",
    "victoria",
    "douglas",
    "olivia",
    "nathan",
    "kelly",
    "peter",
    "christina",
    "zachary",
    "lauren",
    "kyle",
    "joan",
    "walter",
    "evelyn",
    "harold",
    "judith",
    "jeremy",
    "megan",
    "ethan",
    "cheryl",
    "carl",
    "andrea",
    "keith",
    "hannah",
    "roger",
    "martha",
    "gerald",
    "jacqueline",
    "christian",
    "frances",
    "terry",
    "gloria",
    "sean",
    "ann",
    "arthur",
    "teresa",
    "austin",
    "kathryn",
    "noah",
    "sophia",
    "lucas",
    "mia",
    "oliver",
    "charlotte",
    "liam",
    "amelia",
    "mason",
    "harper",
    "logan",
    "ella",
    "leo",
    "grace",
    "max",
    "lily",
    "sam",
    "chloe",
    "tom",
    "kate",
    "ben",
    "lucy",
    "dan",
    "alice",
    "tim",
    "rose",
    "nick",
    "claire",
    "joe",
    "ellen",
    "luke",
    "jane",
    "alex",
    "sophie",
    "chen",
    "wei",
    "li",
    "ming",
    "raj",
    "priya",
    "ahmed",
    "fatima",
    "carlos",
    "sofia",
    "diego",
    "lucia",
    "pierre",
    "marie",
    "hans",
    "ingrid",
    "kenji",
    "yuki",
    "omar",
    "leila",
    "ivan",
    "olga",
]

SURNAMES = [
    "smith",
    "johnson",
    "williams",
    "brown",
    "jones",
    "garcia",
    "miller",
    "davis",
    "rodriguez",
    "martinez",
    "hernandez",
    "lopez",
    "gonzalez",
    "wilson",
    "anderson",
    "thomas",
    "taylor",
    "moore",
    "jackson",
    "martin",
    "lee",
    "perez",
    "thompson",
    "white",
    "harris",
    "sanchez",
    "clark",
    "ramirez",
    "lewis",
    "robinson",
    "walker",
    "young",
    "allen",
    "king",
    "wright",
    "scott",
    "torres",
    "nguyen",
    "hill",
    "flores",
    "green",
    "adams",
    "nelson",
    "baker",
    "hall",
    "rivera",
    "campbell",
    "mitchell",
    "carter",
    "roberts",
    "gomez",
    "phillips",
    "evans",
    "turner",
    "diaz",
    "parker",
    "cruz",
    "edwards",
    "collins",
    "reyes",
    "stewart",
    "morris",
    "morales",
    "murphy",
    "cook",
    "rogers",
    "gutierrez",
    "ortiz",
    "morgan",
    "cooper",
    "peterson",
    "bailey",
    "reed",
    "kelly",
    "howard",
    "ramos",
    "kim",
    "cox",
    "ward",
    "richardson",
    "watson",
    "brooks",
    "chavez",
    "wood",
    "james",
    "bennett",
    "gray",
    "mendoza",
    "ruiz",
    "hughes",
    "price",
    "alvarez",
    "castillo",
    "sanders",
    "patel",
    "myers",
    "long",
    "ross",
    "foster",
    "jimenez",
    "powell",
    "jenkins",
    "perry",
    "russell",
    "sullivan",
    "bell",
    "coleman",
    "butler",
    "henderson",
    "barnes",
    "fisher",
    "vasquez",
    "simmons",
    "graham",
    "marshall",
    "owens",
    "harrison",
    "gibson",
    "wallace",
    "west",
    "cole",
    "hayes",
    "bryant",
    "stone",
    "hunt",
    "black",
    "palmer",
    "wells",
    "grant",
    "fox",
    "rose",
    "mills",
    "nichols",
    "lane",
    "dunn",
    "porter",
    "hudson",
    "wang",
    "zhang",
    "liu",
    "chen",
    "yang",
    "huang",
    "zhao",
    "wu",
    "zhou",
    "singh",
    "khan",
    "ali",
    "kumar",
    "sato",
    "suzuki",
    "tanaka",
    "muller",
    "schmidt",
    "schneider",
    "fischer",
    "weber",
    "rossi",
    "russo",
    "bianchi",
    "dupont",
    "bernard",
    "moreau",
    "silva",
    "santos",
    "costa",
]

CITIES = [
    "london paris tokyo beijing shanghai new york boston chicago seattle denver dallas houston miami atlanta",
    "toronto vancouver sydney melbourne berlin munich madrid rome milan vienna zurich dublin edinburgh manchester",
    "amsterdam brussels prague warsaw moscow istanbul cairo dubai mumbai delhi bangkok singapore seoul osaka hong kong",
    "taipei mexico city lima bogota santiago austin portland phoenix detroit oslo stockholm helsinki lisbon athens",
]
CITY_LIST = [
    c
    for c in " ".join(CITIES)
    .replace("new york", "new_york")
    .replace("hong kong", "hong_kong")
    .replace("mexico city", "mexico_city")
    .split()
]
CITY_LIST = [c.replace("_", " ") for c in CITY_LIST]

PEOPLE = """my friend|my brother|my sister|my mother|my father|our teacher|the doctor|the driver|the manager|my boss
|the customer|our neighbor|the nurse|the engineer|the student|my colleague|the team|the children|the old man
|the young woman|my cousin|the pilot|the waiter|the farmer|the lawyer|his wife|her husband|their son|our daughter
|the police officer|the reporter|the chef|the president|the company|the committee|everyone|nobody|somebody""".replace(
    "\n", ""
).split("|")

THINGS = """the report|the book|a letter|the keys|my phone|the car|a new laptop|the tickets|some coffee|a cup of tea
|the package|the window|the door|the light|the computer|a bicycle|the camera|an umbrella|the map|the menu
|the contract|the invoice|the schedule|the address|the password|a present|the flowers|the music|the movie
|the newspaper|a message|the photos|the bill|the plan|the results|the budget|the meeting notes|a sandwich
|the medicine|the batteries|a jacket|the shoes|the furniture|the printer|the garden|the kitchen|the project
|the presentation|the software|the data|the order|the receipt|a glass of water|the homework|the equipment""".replace(
    "\n", ""
).split("|")

PLACES = """the office|the station|the airport|the hospital|the bank|the library|the park|the market|the beach
|the school|the hotel|the restaurant|the museum|the gym|the kitchen|the garden|the hall|the store|the pharmacy
|the post office|the city center|the bus stop|the train station|the meeting room|the cinema|the university
|the factory|the harbor|the stadium|the bakery|the clinic|the parking lot|the lobby|the second floor|home
|work|downtown|the countryside|the mountains|the lake""".replace("\n", "").split("|")

VERBS_T = """bring|send|buy|find|check|open|close|fix|read|write|clean|move|sell|carry|order|pay|sign|print|share
|review|finish|prepare|update|cancel|book|borrow|return|deliver|collect|compare|change|test|paint|wash|pack
|repair|describe|explain|record|measure""".replace("\n", "").split("|")
VERBS_PAST = """brought|sent|bought|found|checked|opened|closed|fixed|read|wrote|cleaned|moved|sold|carried
|ordered|paid|signed|printed|shared|reviewed|finished|prepared|updated|cancelled|booked|borrowed|returned
|delivered|collected|compared|changed|tested|painted|washed|packed|repaired|described|explained|recorded
|measured""".replace("\n", "").split("|")

ADJ = """good|bad|big|small|new|old|long|short|important|difficult|easy|quiet|loud|cheap|expensive|beautiful
|strange|busy|ready|late|early|warm|cold|hot|bright|dark|heavy|light|clean|full|empty|simple|strong|fresh
|careful|happy|tired|hungry|friendly|famous|safe|dangerous|popular|modern|private|public|open|free|huge|tiny
|excellent|terrible|useful|special|perfect|comfortable|nervous|surprised|certain|possible""".replace(
    "\n", ""
).split("|")

TIME_WORDS = """today|tomorrow|yesterday|tonight|this morning|this afternoon|this evening|next week|last week
|next month|last year|on monday|on tuesday|on wednesday|on thursday|on friday|on saturday|on sunday|every day
|right now|soon|later|in the morning|in the evening|at noon|at midnight|after lunch|before dinner
|over the weekend|in a few minutes|in an hour|as soon as possible|once a week|twice a month""".replace(
    "\n", ""
).split("|")

FOODS = """rice|noodles|bread|soup|salad|chicken|fish|beef|pork|eggs|cheese|apples|oranges|bananas|grapes
|tomatoes|potatoes|carrots|onions|milk|juice|coffee|tea|water|cake|cookies|chocolate|pizza|pasta|dumplings
|tofu|mushrooms|beans|yogurt|butter|honey|strawberries|sandwiches|ice cream""".replace("\n", "").split("|")

TOPICS = """the weather|the news|the game|the election|the economy|the new policy|the train schedule|the price
|the project|the trip|the interview|the concert|the holiday|the conference|the budget|the market|the results
|the traffic|the storm|the festival|the exam|the test|the contract|the delay|the budget report""".replace(
    "\n", ""
).split("|")

UNITS = """kilometers|miles|meters|kilograms|pounds|liters|minutes|hours|days|weeks|months|years|people
|students|pages|boxes|bottles|degrees|floors|tickets|apples|cars|steps|questions|emails|calls""".replace(
    "\n", ""
).split("|")

ANIMALS = [
    "dog",
    "cat",
    "bird",
    "horse",
    "cow",
    "sheep",
    "rabbit",
    "fish",
    "tiger",
    "lion",
    "bear",
    "monkey",
    "elephant",
    "duck",
    "chicken",
    "mouse",
]
COLORS = ["red", "blue", "green", "yellow", "black", "white", "gray", "brown", "orange", "purple", "pink"]


_WIDE: dict[str, list[str]] = {"first": [], "sur": []}
_WIDE_SHARE = [0.0]


def widen_names(first: list[str], sur: list[str], share: float) -> None:
    """Draw ``share`` of the names from these long lists (``names_en``) instead of the common ones."""
    _WIDE["first"], _WIDE["sur"] = list(first), list(sur)
    _WIDE_SHARE[0] = share


def first_name(rng: random.Random) -> str:
    if _WIDE["first"] and rng.random() < _WIDE_SHARE[0]:
        return rng.choice(_WIDE["first"])
    return rng.choice(FIRST_NAMES)


def surname(rng: random.Random) -> str:
    if _WIDE["sur"] and rng.random() < _WIDE_SHARE[0]:
        return rng.choice(_WIDE["sur"])
    return rng.choice(SURNAMES)


def person(rng: random.Random) -> str:
    """A person slot: a name three times in four (run 3 had 60 %: common names were heard too rarely;
    more would starve the ``PEOPLE`` phrases, which the test sentences use too)."""
    r = rng.random()
    if r < 0.4:
        return first_name(rng)
    if r < 0.62:
        return f"{first_name(rng)} {surname(rng)}"
    if r < 0.75:
        return f"{rng.choice(['mister', 'missus', 'doctor', 'professor', 'miss'])} {surname(rng)}"
    return rng.choice(PEOPLE)


def vocative(rng: random.Random) -> str:
    """How a sentence addresses someone: a first name, or a title and surname ("doctor patel")."""
    if rng.random() < 0.65:
        return first_name(rng)
    return f"{rng.choice(['mister', 'missus', 'doctor', 'professor', 'miss'])} {surname(rng)}"


def _num_phrase(rng: random.Random) -> str:
    return f"{sp.quantity(rng)} {rng.choice(UNITS)}"


Template = Callable[[random.Random], str]


def _t(fmt: str) -> Template:
    """A template whose {slots} are filled by the slot functions below."""

    def fill(rng: random.Random) -> str:
        out = fmt
        while "{" in out:
            a = out.index("{")
            b = out.index("}", a)
            slot = out[a + 1 : b]
            out = out[:a] + SLOTS[slot](rng) + out[b + 1 :]
        return out

    return fill


SLOTS: dict[str, Callable[[random.Random], str]] = {
    "p": person,
    "first": first_name,
    "sur": surname,
    "thing": lambda r: r.choice(THINGS),
    "place": lambda r: r.choice(PLACES),
    "v": lambda r: r.choice(VERBS_T),
    "vp": lambda r: r.choice(VERBS_PAST),
    "adj": lambda r: r.choice(ADJ),
    "time": lambda r: r.choice(TIME_WORDS),
    "food": lambda r: r.choice(FOODS),
    "topic": lambda r: r.choice(TOPICS),
    "city": lambda r: r.choice(CITY_LIST),
    "animal": lambda r: r.choice(ANIMALS),
    "color": lambda r: r.choice(COLORS),
    "day": lambda r: r.choice(sp.WEEKDAYS),
    "month": lambda r: r.choice(sp.MONTHS),
    "date": sp.date,
    "clock": sp.clock,
    "money": sp.money,
    "pct": sp.percent,
    "dec": sp.decimal,
    "phone": sp.phone,
    "num": sp.quantity,
    "qty": _num_phrase,
    "ord": lambda r: sp.ordinal(r.randint(1, 40)),
    "year": lambda r: sp.year(r.randint(1900, 2040), r),
    "small": lambda r: sp.cardinal(r.randint(2, 12)),
}

EVERYDAY = [
    _t(s)
    for s in """{p} will {v} {thing} {time}
{p} {vp} {thing} at {place} {time}
can you {v} {thing} for me please
please {v} {thing} before you leave
i need to {v} {thing} {time}
we should meet at {place} {time}
{p} is waiting for you at {place}
do you know where {thing} is
the {adj} {animal} is sleeping in the garden
i think {topic} is {adj} this year
have you heard about {topic}
{p} said that {topic} was {adj}
let's go to {place} {time}
could you tell {p} to call me back
i left {thing} at {place}
my favorite color is {color}
i would like some {food} and some {food}
we had {food} for dinner {time}
the {color} car belongs to {p}
it was a {adj} day in {city}
{p} lives in {city} with {p}
i am flying to {city} {time}
the train to {city} is {adj} {time}
{p} doesn't like {food}
i can't find {thing} anywhere
what time does {place} open
how long does it take to get to {place}
thank you for helping me with {thing}
it's too {adj} to go outside {time}
{p} and {p} are working on {thing}
is {p} coming to the party {time}
the weather in {city} is {adj} {time}
i'm sorry but {thing} is not ready yet
where did you put {thing}
she bought a {adj} {color} jacket
they were talking about {topic} all evening
he forgot to {v} {thing} again
the meeting has been moved to {day}
excuse me is this seat taken
we are going to {city} on {day}
{p} works at {place} in {city}
i will send you the details {time}
my name is {first} {sur}
this is {first} speaking how can i help you
please ask for {first} at the front desk
{first} {sur} is the new manager
i spoke with {first} about {topic}
{first} and {first} moved to {city} last year
i'd like you to meet {first} {sur}
the package is addressed to {first} {sur}
{first} {sur} called about {topic}
please forward this to {sur} in accounting
{sur} and {sur} signed the contract {time}
the award went to {first} {sur} from {city}
can i speak to {first} please
dear {first} thank you for {thing}
{first} {sur} will be late {time}
ask {first} if {thing} is ready
i got a message from {first} {time}
{first} told me about {topic}
we are having dinner with {first} and {first} {time}
professor {sur} teaches at the university in {city}
the doctor will see {first} {sur} now
{first} {sur} has been promoted to manager
have you seen {first} {time}
i borrowed {thing} from {first}
{first} gave {thing} to {first}
thanks to {first} {sur} for {thing}
{first} {sur} and {first} {sur} are on the team
mister {sur} is in a meeting with {first}
happy birthday {first}
good morning {first} how are you
{first} is from {city} and {first} is from {city}
let me introduce {first} {sur} from {city}
{first} wants to {v} {thing} with {sur}
{p} and {first} {sur} arrived at {place} {time}
""".strip().split("\n")
]

NUMERIC = [
    _t(s)
    for s in """the meeting is on {date}
my birthday is {date}
the flight leaves at {clock}
let's meet at {clock} {time}
the store opens at {clock}
the train arrives at {clock} on {day}
it costs {money}
i paid {money} for {thing}
the ticket is {money}
the total comes to {money}
prices went up by {pct}
about {pct} of the students passed the exam
the battery is at {pct}
my phone number is {phone}
please call me at {phone}
you can reach {first} at {phone}
the room number is {num}
we need {qty}
there are {qty} left
the distance is {dec} kilometers
the temperature is {dec} degrees
the score was {small} to {small}
he finished in {ord} place
this is the {ord} time i have asked
the company was founded in {year}
she was born in {year}
it happened on {date}
the deadline is {date} at {clock}
the bill is {money} and the tip is {pct}
{p} ran {dec} miles in {num} minutes
the population grew by {pct} in {year}
order number {phone}
the package weighs {dec} kilograms
interest rates rose to {pct}
the bus comes every {small} minutes
we sold {num} tickets {time}
i was born on {date}
the concert starts at {clock} on {date}
""".strip().split("\n")
]


# Sentence kinds: everyday, numeric, else everyday + conjunction + numeric. Run 3 had 0.5 / 0.4 (numbers
# erred 0.9 %, everyday sentences carried most errors); numbers now come from a quarter of the templates
# plus the compounds, still ~35,000 sentences for the ITN classes.
EVERYDAY_SHARE = 0.65
NUMERIC_SHARE = 0.25
# Everyday sentences addressed to someone ("anna can you ...", "... please michael"): more name slots
# without new frames, and names where speech has them, at the edges of a phrase.
VOCATIVE_P = 0.25


def sentence(rng: random.Random) -> str:
    """One English utterance in spoken form."""
    r = rng.random()
    if r < EVERYDAY_SHARE:
        s = rng.choice(EVERYDAY)(rng)
        if rng.random() < VOCATIVE_P:
            s = f"{vocative(rng)} {s}" if rng.random() < 0.6 else f"{s} {vocative(rng)}"
    elif r < EVERYDAY_SHARE + NUMERIC_SHARE:
        s = rng.choice(NUMERIC)(rng)
    else:
        s = (
            rng.choice(EVERYDAY)(rng)
            + " "
            + rng.choice(["and", "but", "because", "so"])
            + " "
            + rng.choice(NUMERIC)(rng)
        )
    return " ".join(s.split())


def hotword_sentence(name: str, rng: random.Random) -> str:
    """A sentence carrying ``name`` (a rare name absent from the training text) for the hotword test."""
    frame = rng.choice(
        [
            "please call {n} {time}",
            "i had lunch with {n} {time}",
            "{n} will {v} {thing} {time}",
            "the report was written by {n}",
            "{n} is waiting at {place}",
            "we invited {n} to the meeting",
            "have you met {n} before",
            "send the tickets to {n} please",
        ]
    )
    return " ".join(_t(frame.replace("{n}", name))(rng).split())
