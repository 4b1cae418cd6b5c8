"""Math answer extraction/comparison and the verify() dispatcher."""

import sys
import types

import pytest

from flywheel.errors import FlywheelError
from flywheel.judges import verifiers
from flywheel.judges.verifiers import (
    compare_answers,
    extract_answer,
    math_backend,
    normalize_answer,
    to_number,
    verify,
    verify_math,
)

# (response, reference, expected) where the built-in backend and math_verify agree.
COMMON_CASES = [
    ("So the total is \\boxed{42}.", "42", True),
    ("So the total is \\boxed{41}.", "42", False),
    ("Natalia sold 48 + 24 = 72 clips.\n#### 72", "72", True),
    ("#### 1,000", "1000", True),
    ("The answer is 1,234,567.", "1234567", True),
    ("We get 18 eggs, then 3 more: 21", "21", True),
    ("The answer is 3.0", "3", True),
    ("It costs 2.50 dollars in total, so 2.50", "2.5", True),
    ("\\boxed{\\dfrac{1}{3}}", "1/3", True),
    ("The answer is 3/4", "0.75", True),
    ("The answer is $\\frac{1}{2}$.", "0.5", True),
    ("The answer is 25%", "25", True),
    ("The answer is 25%", "0.25", True),
    ("\\boxed{-5}", "-5", True),
    ("\\boxed{-5}", "5", False),
    ("\\boxed{\\frac{-1}{2}}", "-0.5", True),
    ("First 5, then \\boxed{7}, then 9", "7", True),
    ("The answer is 12.", "12", True),
    ("answer: 0.3333", "1/3", False),
    ("I do not know.", "3", None),
    ("", "3", None),
]

BUILTIN_ONLY_CASES = [
    ("The answer is \\$18.00", "18", True),  # escaped currency
    ("The answer is 12 apples.", "12", True),
    ("\\boxed{5 \\text{ cm}}", "5", True),
    ("\\boxed{x = 4}", "4", True),
    ("Answer: B", "B", True),
    ("Answer: C.", "B", False),
    ("\\boxed{x+1}", "1+x", None),  # symbolic: undecidable without a CAS
    ("\\boxed{2x}", "2", None),
    ("\\boxed{10} and finally \\boxed{12}", "12", True),  # the last box counts
    ("We need $1{,}000$ in total", "1000", True),
    ("answer: 0.333333", "1/3", True),  # within 1e-6 relative tolerance
]


@pytest.mark.parametrize("response, reference, expected", COMMON_CASES + BUILTIN_ONLY_CASES)
def test_builtin_backend(response, reference, expected):
    assert verify_math(response, reference, backend="builtin") is expected


@pytest.mark.parametrize("response, reference, expected", COMMON_CASES)
def test_auto_backend(response, reference, expected):
    assert verify_math(response, reference) is expected


def test_math_verify_backend_symbolic():
    pytest.importorskip("math_verify")
    assert math_backend() == "math_verify"
    assert verify_math("\\boxed{x+1}", "1+x", backend="math_verify") is True
    assert verify_math("\\boxed{\\sqrt{4}}", "2", backend="math_verify") is True
    # math_verify finds nothing in "\$18.00"; auto falls back to the built-in extraction
    assert verify_math("The answer is \\$18.00", "18") is True


def test_math_verify_missing_is_an_error(monkeypatch):
    monkeypatch.setattr(verifiers, "_math_verify", None)
    assert math_backend() == "builtin"
    with pytest.raises(FlywheelError, match="math-verify"):
        verify_math("\\boxed{1}", "1", backend="math_verify")
    with pytest.raises(FlywheelError, match="backend"):
        verify_math("\\boxed{1}", "1", backend="sympy")


@pytest.mark.parametrize(
    "response, answer",
    [
        ("blah \\boxed{\\frac{a}{b}} blah", "\\frac{a}{b}"),
        ("\\boxed{1} then \\fbox{2}", "2"),
        ("#### 15 \n", "15"),
        ("So the final answer is: 7 kg.", "7"),
        ("The answer is B. Because A is wrong.", "B"),
        ("1, 2, 3 and 4", "4"),
        ("no digits", None),
    ],
)
def test_extract_answer(response, answer):
    assert extract_answer(response) == answer


def test_to_number_forms():
    from fractions import Fraction

    assert to_number("1,000") == (Fraction(1000), False)
    assert to_number("$3.50$") == (Fraction(7, 2), False)
    assert to_number("\\frac{3}{4}") == (Fraction(3, 4), False)
    assert to_number("12.5\\%") == (Fraction(25, 2), True)
    assert to_number(".5") == (Fraction(1, 2), False)
    assert to_number("1/0") is None
    assert to_number("1,5") is None  # not a thousands separator
    assert to_number("x+1") is None


def test_normalize_keeps_fraction_grouping():
    assert normalize_answer("$\\frac{x+1}{2}$") == "(x+1)/2"
    assert normalize_answer("\\dfrac{3}{4}") == "3/4"
    assert compare_answers("\\frac{x+1}{2}", "x+1/2") is None


def test_compare_answers_strings():
    assert compare_answers("Paris", "paris") is True
    assert compare_answers("London", "Paris") is False
    assert compare_answers("the capital city", "Paris") is None


def test_reference_given_as_full_solution():
    assert verify_math("\\boxed{72}", "48/2 = 24, 48 + 24 = 72\n#### 72") is True
    assert verify_math("\\boxed{7}", 7) is True


def test_verify_dispatch_math_and_nothing():
    assert verify({"answer": "42"}, "Thus \\boxed{42}") is True
    assert verify({"answer": 42}, "Thus \\boxed{41}") is False
    assert verify({"topic": "cooking"}, "anything") is None
    assert verify({}, "anything") is None
    assert verify(None, "anything") is None
    assert verify({"answer": None}, "\\boxed{1}") is None


@pytest.fixture
def fake_instructions(monkeypatch):
    """A stand-in checker: an instruction passes when its word occurs in the response."""
    calls = []

    def verify_all(response, instructions):
        calls.append(instructions)
        per = {ins["kind"]: ins["kind"] in response for ins in instructions}
        return all(per.values()), per

    module = types.ModuleType("flywheel.sdg.instructions")
    module.verify_all = verify_all
    monkeypatch.setitem(sys.modules, "flywheel.sdg.instructions", module)
    return calls


def test_verify_dispatch_instructions(fake_instructions):
    meta = {"instructions": [{"kind": "alpha"}, {"kind": "beta"}]}
    assert verify(meta, "alpha and beta") is True
    assert verify(meta, "only alpha") is False
    assert fake_instructions == [meta["instructions"], meta["instructions"]]


def test_verify_both_verifiers_must_hold(fake_instructions):
    meta = {"answer": "4", "instructions": [{"kind": "alpha"}]}
    assert verify(meta, "alpha: \\boxed{4}") is True
    assert verify(meta, "alpha: \\boxed{5}") is False
    assert verify(meta, "beta: \\boxed{4}") is False
    assert verify(meta, "alpha, no answer at all") is None


@pytest.mark.parametrize(
    "raw, expected",
    [
        (True, True),
        (None, None),
        ((False, {"a": False}), False),
        ([True, True], True),
        ([True, None], None),
        ({"a": True, "b": False}, False),
    ],
)
def test_instruction_result_shapes(raw, expected):
    assert verifiers._instructions_result(raw) is expected


def test_verify_with_real_instruction_checkers():
    instructions = pytest.importorskip("flywheel.sdg.instructions")
    meta = {"instructions": [{"kind": "all_lowercase", "params": {}}]}
    expected_ok, _ = instructions.verify_all("all lowercase here", meta["instructions"])
    assert verify(meta, "all lowercase here") is expected_ok is True
    assert verify(meta, "Not Lowercase") is False
