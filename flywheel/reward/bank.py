"""Short question/answer texts for the shipped HelpSteer2-format set, written for this project.

Each entry is ``(question, [sentences])``: a plain factual question and a short, correct answer of two
to four sentences with at least one comma (instruction variants such as "no commas" need one to remove).
The builder in :mod:`flywheel.reward.helpsteer_set` rewrites these answers into compliant, violating,
padded, truncated and scrambled responses whose attributes are known by construction.
"""

from __future__ import annotations

QA_BANK: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Why does ice float on water?",
        (
            "Ice is less dense than liquid water, so it floats.",
            "When water freezes, its molecules lock into an open crystal pattern that takes up more space.",
            "The same mass in a larger volume means a lower density.",
        ),
    ),
    (
        "How do plants make their food?",
        (
            "Plants make food through photosynthesis.",
            "Their leaves capture sunlight, take in carbon dioxide from the air, and draw water from the roots.",
            "They turn these into sugar and release oxygen as a by-product.",
        ),
    ),
    (
        "What causes the seasons on Earth?",
        (
            "The seasons come from the tilt of Earth's axis.",
            "As Earth orbits the Sun, one hemisphere leans toward it and gets more direct light, longer days, and warmer weather.",
            "Half a year later, the same hemisphere leans away and has winter.",
        ),
    ),
    (
        "Why should you wash your hands with soap?",
        (
            "Soap removes germs that water alone leaves behind.",
            "Its molecules bind to oil and dirt, which lets water rinse them away together with many bacteria and viruses.",
            "Washing for about twenty seconds, including between the fingers, works best.",
        ),
    ),
    (
        "How does a refrigerator keep food cold?",
        (
            "A refrigerator moves heat from the inside to the outside.",
            "A fluid called a refrigerant evaporates inside the cold coils, absorbing heat, and then a compressor squeezes it so it releases that heat at the back.",
            "Cooling the food slows the growth of bacteria.",
        ),
    ),
    (
        "What is a budget and why is it useful?",
        (
            "A budget is a plan for how you will spend and save your money.",
            "It lists your income, your fixed costs, and your flexible spending.",
            "With a budget, you can spot waste early and save steadily for larger goals.",
        ),
    ),
    (
        "Why is the sky blue?",
        (
            "Sunlight contains all colors, but air scatters short blue wavelengths much more than red ones.",
            "This scattered blue light reaches our eyes from every part of the sky.",
            "At sunset, light crosses more air, so more blue is scattered away and the sky looks orange.",
        ),
    ),
    (
        "How do vaccines protect people?",
        (
            "A vaccine trains the immune system to recognize a germ without causing the disease.",
            "It contains a harmless piece, copy, or weakened form of the germ, and the body makes antibodies against it.",
            "If the real germ arrives later, the immune system responds quickly.",
        ),
    ),
    (
        "What does a compiler do?",
        (
            "A compiler translates source code written by a programmer into a form a computer can run.",
            "It reads the whole program, checks it for errors, and produces machine code or bytecode.",
            "Compiled programs usually run faster than code that is interpreted line by line.",
        ),
    ),
    (
        "Why do we have leap years?",
        (
            "A year on Earth lasts about 365 and a quarter days.",
            "Adding one extra day every four years, on February 29, keeps the calendar in step with the seasons.",
            "Without leap years, the calendar would drift by about a day every four years.",
        ),
    ),
    (
        "How can I get better sleep?",
        (
            "Keep a regular schedule, going to bed and waking up at the same times every day.",
            "Avoid caffeine in the late afternoon, and keep your bedroom dark, quiet, and cool.",
            "Putting screens away an hour before bed also helps many people fall asleep faster.",
        ),
    ),
    (
        "What is the difference between weather and climate?",
        (
            "Weather is the state of the air over a short time, such as today's rain or wind.",
            "Climate is the average pattern of weather in a region over many years.",
            "A cold day says little about climate, but decades of warmer summers do.",
        ),
    ),
    (
        "How does a bicycle stay upright?",
        (
            "A moving bicycle stays upright mostly because the rider steers into any lean.",
            "The shape of the front fork and the spinning wheels also help, since they turn the front wheel toward the fall.",
            "At very low speed, these effects are weak, so balancing is harder.",
        ),
    ),
    (
        "Why do onions make people cry?",
        (
            "Cutting an onion breaks its cells and releases enzymes that form an irritating gas.",
            "When this gas reaches the eyes, it stimulates nerves, and the eyes make tears to wash it away.",
            "Chilling the onion or using a sharp knife reduces the effect.",
        ),
    ),
    (
        "What is inflation?",
        (
            "Inflation is the general rise in prices over time.",
            "When prices rise, each unit of money buys fewer goods and services.",
            "Central banks often aim for low, stable inflation, around two percent a year.",
        ),
    ),
    (
        "How do bees make honey?",
        (
            "Bees collect nectar from flowers and store it in a special stomach.",
            "Back at the hive, they pass it between workers, add enzymes, and fan it with their wings to evaporate water.",
            "The thick result is sealed in wax cells as honey.",
        ),
    ),
    (
        "Why is exercise good for the heart?",
        (
            "Regular exercise makes the heart muscle stronger, so it pumps more blood with each beat.",
            "It also lowers blood pressure, improves cholesterol, and helps control weight.",
            "Adults benefit from about 150 minutes of moderate activity a week.",
        ),
    ),
    (
        "What is a password manager?",
        (
            "A password manager is a program that stores your passwords in an encrypted vault.",
            "You remember one strong master password, and it fills in unique, long passwords for every site.",
            "This way, a leak at one website does not expose your other accounts.",
        ),
    ),
    (
        "How do tides work?",
        (
            "Tides are caused mainly by the Moon's gravity pulling on the oceans.",
            "The water bulges toward the Moon on one side of Earth, and on the far side as well.",
            "As Earth rotates through these bulges, most coasts see two high tides and two low tides each day.",
        ),
    ),
    (
        "Why does bread rise?",
        (
            "Bread rises because yeast in the dough eats sugar and releases carbon dioxide gas.",
            "Kneading builds a stretchy network of gluten, which traps the gas in small bubbles.",
            "In the oven, the bubbles expand, and the heat sets the structure.",
        ),
    ),
    (
        "What is the purpose of a firewall?",
        (
            "A firewall controls which network traffic may enter or leave a computer or network.",
            "It checks connections against rules, such as allowed ports, addresses, and programs.",
            "Blocking unexpected traffic makes many attacks much harder.",
        ),
    ),
    (
        "How do magnets work?",
        (
            "A magnet has a magnetic field created by the aligned spins of its electrons.",
            "Opposite poles attract, while like poles push each other apart.",
            "Iron, nickel, and cobalt are attracted because their own atoms can line up with the field.",
        ),
    ),
    (
        "Why do leaves change color in autumn?",
        (
            "Leaves are green because of chlorophyll, which plants use to capture sunlight.",
            "In autumn, shorter days signal the tree to stop making chlorophyll, and the green fades.",
            "Yellow and orange pigments that were there all along become visible, and some trees also make red ones.",
        ),
    ),
    (
        "What is recycling and why does it matter?",
        (
            "Recycling turns used materials, such as paper, glass, and metal, into new products.",
            "It saves raw materials and energy, and it reduces the waste sent to landfills.",
            "Rinsing containers and sorting them correctly keeps the recycled material clean.",
        ),
    ),
    (
        "How does a thermometer measure temperature?",
        (
            "A thermometer uses a material whose properties change in a predictable way with heat.",
            "In a liquid thermometer, the liquid expands as it warms, and it rises in a thin tube marked with a scale.",
            "Digital thermometers instead measure how the electrical resistance of a sensor changes.",
        ),
    ),
    (
        "What is a noun?",
        (
            "A noun is a word that names a person, place, thing, or idea.",
            "Examples include teacher, city, chair, and freedom.",
            "In a sentence, a noun often acts as the subject or the object of a verb.",
        ),
    ),
    (
        "Why do cats purr?",
        (
            "Cats often purr when they are relaxed, for example while being stroked.",
            "They also purr when stressed or hurt, which suggests purring can soothe them.",
            "The sound comes from rapid twitches of the muscles in the voice box.",
        ),
    ),
    (
        "How do airplanes fly?",
        (
            "An airplane flies because its wings produce lift.",
            "The wing's shape and angle turn the passing air downward, and the air pushes the wing up in return.",
            "Engines provide thrust, which keeps air flowing over the wings fast enough.",
        ),
    ),
    (
        "What is a good way to learn a new language?",
        (
            "Practice a little every day, rather than studying for hours once a week.",
            "Learn the most common words first, listen to native speakers, and try speaking early, even with mistakes.",
            "Spaced repetition flashcards help the vocabulary stick.",
        ),
    ),
    (
        "Why is drinking water important?",
        (
            "Water makes up more than half of the human body.",
            "It carries nutrients, controls body temperature, and removes waste.",
            "Even mild dehydration can cause headaches, tiredness, and poor concentration.",
        ),
    ),
)

FILLER_OPENERS: tuple[str, ...] = (
    "That is a great question, and it is one that many people wonder about.",
    "Thank you for asking this question, which comes up quite often.",
    "Let me think about this carefully and explain it step by step in detail.",
    "This is an interesting topic, so I will try to go through it thoroughly.",
)

FILLER_CLOSERS: tuple[str, ...] = (
    "I hope this long explanation has been helpful to you in every possible way.",
    "In summary, as I said above, this is how it works, as explained in the answer above.",
    "To repeat the main point once more for clarity, the explanation above covers it.",
    "Please feel free to read this answer again if any part of it was unclear.",
)
