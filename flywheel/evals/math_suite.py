"""The math suite: multi-step word problems (two to four operations) with integer answers.

Templates of this module, written for the suite; ``meta["answer"]`` is a string, the format
:func:`flywheel.judges.verifiers.verify_math` reads, and the prompt asks for a last line ``Answer: N``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

Row = dict[str, Any]
PROBLEMS_PER_FAMILY = 12
MATH_SUFFIX = 'Work it out step by step, then end with a final line of the form "Answer: N", where N is a whole number.'


NAMES = (
    "Marisol",
    "Tobias",
    "Priya",
    "Oskar",
    "Leilani",
    "Mateo",
    "Ingrid",
    "Rashid",
    "Noor",
    "Callum",
    "Yuki",
    "Zanele",
    "Bruno",
    "Amara",
    "Soren",
    "Talia",
)
Problem = tuple[str, int]


def _discount(r: random.Random, who: str) -> Problem:
    price, pct, fee = 20 * r.randint(3, 20), r.choice((10, 20, 25, 50)), r.randint(3, 12)
    thing = r.choice(("desk lamp", "backpack", "rug", "tent", "desk chair", "bookshelf"))
    return (
        (
            f"{who} orders a {thing} listed at ${price}. The shop takes {pct}% off the listed price "
            f"and then adds a flat delivery charge of ${fee}. What does {who} pay altogether, in "
            "dollars?"
        ),
        price - price * pct // 100 + fee,
    )


def _ride(r: random.Random, who: str) -> Problem:
    v, h, extra = r.randint(12, 24), r.randint(2, 4), r.randint(5, 30)
    return (
        (
            f"{who} cycles at a steady {v} kilometres per hour for {h} hours, stops for lunch, then "
            f"rides another {extra} kilometres to a campsite. How long is the whole ride in "
            "kilometres?"
        ),
        v * h + extra,
    )


def _ages(r: random.Random, who: str) -> Problem:
    other = r.choice([n for n in NAMES if n != who])
    age, gap, years = r.randint(12, 40), r.randint(2, 9), r.randint(3, 15)
    return (
        (
            f"{who} is {age} years old and {other} is {gap} years younger than {who}. What will "
            f"their ages add up to {years} years from now?"
        ),
        age + (age - gap) + 2 * years,
    )


def _leftover_rolls(r: random.Random, who: str) -> Problem:
    trays, per, box = r.randint(3, 9), r.randint(6, 14), r.randint(4, 9)
    if trays * per % box == 0:
        per += 1
    return (
        (
            f"A bakery bakes {trays} trays with {per} rolls on each tray. The rolls go into boxes "
            f"of {box}, and only full boxes leave the shop. How many rolls stay behind?"
        ),
        trays * per % box,
    )


def _flour(r: random.Random, who: str) -> Problem:
    grams, kilos, bags = r.choice((250, 300, 400, 450, 600, 700)), r.choice((2, 3, 5)), r.randint(2, 6)
    return (
        (
            f"One loaf of {who}'s bread recipe uses {grams} grams of flour. The pantry holds {bags} "
            f"bags of flour weighing {kilos} kilograms each. How many complete loaves can be "
            "baked?"
        ),
        bags * kilos * 1000 // grams,
    )


def _wages(r: random.Random, who: str) -> Problem:
    hours, rate, weeks = r.randint(8, 25), r.randint(9, 18), r.randint(3, 8)
    spent = r.randint(20, hours * rate * weeks // 2)
    return (
        (
            f"{who} works {hours} hours every week at a cafe and is paid ${rate} per hour. After "
            f"{weeks} weeks, {who} spends ${spent} on a concert ticket and keeps the rest. What "
            f"is left for {who}, in dollars?"
        ),
        hours * rate * weeks - spent,
    )


def _diesel(r: random.Random, who: str) -> Problem:
    per100, km, price = r.randint(5, 12), 100 * r.randint(2, 9), r.randint(2, 3)
    return (
        (
            f"A delivery van burns {per100} litres of diesel for every 100 kilometres. {who}'s route "
            f"is {km} kilometres long and diesel costs ${price} per litre. What does the diesel "
            "for one run of the route cost, in dollars?"
        ),
        per100 * km // 100 * price,
    )


def _packs(r: random.Random, who: str) -> Problem:
    size, pupils, price = r.choice((6, 8, 10, 12)), r.randint(21, 58), r.randint(3, 9)
    return (
        (
            f"Folders are sold only in packs of {size}, at ${price} a pack. {who} wants one folder "
            f"for each of {pupils} pupils. What is the least {who} can spend, in dollars?"
        ),
        math.ceil(pupils / size) * price,
    )


def _saving(r: random.Random, who: str) -> Problem:
    have, weekly = r.randint(20, 80), r.randint(8, 25)
    cost = have + r.randint(50, 300)
    gadget = r.choice(("keyboard", "skateboard", "tablet", "telescope", "guitar"))
    return (
        (
            f"{who} has ${have} in a money box and adds ${weekly} at the end of every week. A "
            f"{gadget} costs ${cost}. After how many weeks can {who} first afford it?"
        ),
        math.ceil((cost - have) / weekly),
    )


def _quiz(r: random.Random, who: str) -> Problem:
    while True:
        scores, target = [r.randint(60, 95) for _ in range(3)], r.randint(72, 90)
        need = 4 * target - sum(scores)
        if 0 <= need <= 100:
            break
    return (
        (
            f"{who} scored {scores[0]}, {scores[1]} and {scores[2]} on three quizzes. What score "
            f"on the fourth quiz makes the average of all four exactly {target}?"
        ),
        need,
    )


def _lawn(r: random.Random, who: str) -> Problem:
    length, width = r.randint(8, 20), r.randint(6, 15)
    side = r.randint(2, min(length, width) - 2)
    return (
        (
            f"{who}'s yard is a rectangle {length} metres long and {width} metres wide. A square "
            f"patio with {side}-metre sides fills one corner and grass covers the rest. How many "
            "square metres of grass are there?"
        ),
        length * width - side * side,
    )


def _bus(r: random.Random, who: str) -> Problem:
    start, off, on, late = r.randint(20, 40), r.randint(3, 10), r.randint(2, 12), r.randint(1, 6)
    if (start - off + on) % 2:
        on += 1
    return (
        (
            f"A bus leaves the depot with {start} people aboard, {who} among them. At the first "
            f"stop {off} people step off and {on} step on. At the second stop half of the people "
            f"aboard step off and {late} step on. How many people are on the bus now?"
        ),
        (start - off + on) // 2 + late,
    )


def _meeting(r: random.Random, who: str) -> Problem:
    s1, s2, hours = r.randint(40, 70), r.randint(50, 90), r.randint(2, 5)
    return (
        (
            f"Two towns are {(s1 + s2) * hours} kilometres apart. At noon {who} drives out of one "
            f"town at {s1} km per hour while a friend drives out of the other toward {who} at {s2} "
            "km per hour. How many hours after noon do they meet?"
        ),
        hours,
    )


def _prize(r: random.Random, who: str) -> Problem:
    parts, unit = r.sample(range(1, 8), 3), r.randint(5, 40)
    return (
        (
            f"{who} and two cousins split ${sum(parts) * unit} in the proportion {parts[0]} : "
            f"{parts[1]} : {parts[2]}. How many dollars make up the biggest share?"
        ),
        max(parts) * unit,
    )


def _festival(r: random.Random, who: str) -> Problem:
    while True:
        films, pause, hours = r.randint(3, 5), r.choice((10, 15, 20)), r.randint(4, 8)
        spare = 60 * hours - (films - 1) * pause
        if spare % films == 0:
            break
    return (
        (
            f"{who} programs {films} films of {spare // films} minutes each for a festival, with a "
            f"{pause}-minute pause between one film and the next. How many hours does the whole "
            "program last?"
        ),
        hours,
    )


def _chairs(r: random.Random, who: str) -> Problem:
    per_row, guests = r.randint(8, 16), r.randint(40, 150)
    if guests % per_row == 0:
        guests += 1
    return (
        (
            f"A hall has rows of {per_row} chairs. {guests} guests arrive and {who} seats them row "
            "by row from the front, filling each row before starting the next. How many chairs "
            "in the last, partly filled row stay empty?"
        ),
        per_row - guests % per_row,
    )


FAMILIES: dict[str, Callable[[random.Random, str], Problem]] = {
    "discount": _discount,
    "ride": _ride,
    "ages": _ages,
    "leftover": _leftover_rolls,
    "flour": _flour,
    "wages": _wages,
    "diesel": _diesel,
    "packs": _packs,
    "saving": _saving,
    "quiz": _quiz,
    "lawn": _lawn,
    "bus": _bus,
    "meeting": _meeting,
    "prize": _prize,
    "festival": _festival,
    "chairs": _chairs,
}


def build_math(seed: int = 20250121) -> list[Row]:  # the suites' seed (suites.SEED)
    """The math suite: ``PROBLEMS_PER_FAMILY`` distinct problems per template family."""
    rng = random.Random(seed + 1)
    rows: list[Row] = []
    seen: set[str] = set()
    for _ in range(PROBLEMS_PER_FAMILY):
        for family, make in FAMILIES.items():
            question, answer = make(rng, rng.choice(NAMES))
            while question in seen:
                question, answer = make(rng, rng.choice(NAMES))
            seen.add(question)
            rows.append(
                {
                    "id": f"eval-math-{len(rows) + 1:04d}",
                    "messages": [{"role": "user", "content": f"{question}\n\n{MATH_SUFFIX}"}],
                    "meta": {"answer": str(answer), "family": family},
                }
            )
    return rows
