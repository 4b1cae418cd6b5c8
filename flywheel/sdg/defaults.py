"""Default seed data for synthetic prompt generation (plain data, no logic).

The Nemotron-4 340B report (section 3.2.1) starts open Q&A and writing prompts from a few
dozen macro topics expanded into subtopics, writing tasks from a list of document types, and
math/Python problems from keyword lists. These lists are small, general defaults; a run can
replace any of them through ``SDGConfig``.
"""

DEFAULT_TOPICS: tuple[str, ...] = (
    "science and nature",
    "technology and computing",
    "health and medicine",
    "history",
    "geography and travel",
    "economics and finance",
    "business and entrepreneurship",
    "law and government",
    "philosophy and ethics",
    "psychology and human behavior",
    "education and learning",
    "arts and culture",
    "literature and language",
    "music and film",
    "sports and fitness",
    "food and cooking",
    "environment and climate",
    "relationships and family",
    "personal development and careers",
    "home, gardening and everyday life",
)

DEFAULT_DOC_TYPES: tuple[str, ...] = (
    "newsletter",
    "poem",
    "essay",
    "email",
    "short story",
    "blog post",
    "speech",
    "product description",
    "cover letter",
    "news article",
    "social media post",
    "dialogue script",
)

DEFAULT_MATH_KEYWORDS: tuple[str, ...] = (
    "prime numbers",
    "fractions",
    "percentages",
    "linear equations",
    "quadratic equations",
    "systems of equations",
    "arithmetic sequences",
    "geometric series",
    "probability",
    "combinatorics",
    "area of a triangle",
    "circles",
    "Pythagorean theorem",
    "logarithms",
    "derivatives",
    "integrals",
    "matrices",
    "modular arithmetic",
    "greatest common divisor",
    "mean, median and mode",
)

DEFAULT_CODE_KEYWORDS: tuple[str, ...] = (
    "list comprehension",
    "dictionary",
    "string formatting",
    "recursion",
    "generators",
    "decorators",
    "classes and inheritance",
    "exception handling",
    "file reading",
    "sorting",
    "binary search",
    "regular expressions",
    "dataclasses",
    "itertools",
    "collections.Counter",
    "context managers",
    "unit testing",
    "JSON parsing",
    "sets",
    "lambda functions",
)

# Difficulty phrases mixed into math/code problem prompts so one keyword yields varied problems.
MATH_LEVELS: tuple[str, ...] = ("elementary school", "middle school", "high school", "university")
CODE_LEVELS: tuple[str, ...] = ("beginner", "intermediate", "advanced")
