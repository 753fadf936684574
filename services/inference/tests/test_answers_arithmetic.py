"""Re-computing the arithmetic an answer shows: what is checked, what is skipped (pure logic, no I/O)."""

import pytest

from modelyard_inference.answers.arithmetic import check, tokenize


def errors(text: str) -> list[str]:
    return [s.expression for s in check(text).errors]


@pytest.mark.parametrize(
    "text",
    [
        "She has 16 - 3 - 4 = 9 eggs left.",
        "She sells 9 eggs for 9 * $2 = $18.",
        "The total is $1,200.50 + $0.50 = $1,201.",
        "A discount of 20% of 50 = 10 dollars.",
        "That is (12 / 20) x 100 = 60%.",
        "He runs 3 hours * 10 miles/hour = 30 miles.",
        "Each girl gets 1/6 of 24 = 4 liters.",
        "So 60 / 7 = 8.57 miles a day.",
        "She used 4 dozens + 2 = 50 eggs.",
        "In total 8 + 6 + 4 + (5 * 5) = 8 + 6 + 4 + 25 = 43 hours.",
        "It is 5 times 3 = 15 and 2 multiplied by 4 = 8.",
        "It costs 12.8 / (1 - 3/5) = 32 dollars.",
        "The groomer has 3 (birds) + 12 (horses) = 15 animals.",
    ],
)
def test_right_steps_pass(text: str) -> None:
    result = check(text)
    assert result.steps, text
    assert not result.errors, [s.expression for s in result.errors]


@pytest.mark.parametrize(
    ("text", "claimed", "computed"),
    [
        ("She has 16 - 3 - 4 = 10 eggs left.", 10, 9),
        ("He spends 7 * (3 + 5) = $63 each week.", 63, 56),
        ("Jimmy has $8 * 2 + $2 = $20.", 20, 18),
        ("A discount of 20% of 50 = 12 dollars.", 12, 10),
        ("That is (12 / 20) x 100 = 55%.", 55, 60),
        ("He runs 3 hours * 10 miles/hour = 40 miles.", 40, 30),
        ("She keeps 2/3 * 24 = 32 marbles.", 32, 16),
        ("So 60 / 7 = 8.75 miles a day.", 8.75, 60 / 7),
        ("It is 5 times 3 = 16.", 16, 15),
    ],
)
def test_wrong_steps_are_found_with_the_right_value(text: str, claimed: float, computed: float) -> None:
    [step] = check(text).errors
    # a percentage may be read as 55 or 0.55: the step is reported with the first reading that parses
    assert step.claimed in (claimed, claimed / 100)
    assert step.computed == pytest.approx(computed)


def test_calculator_annotations_are_checked_link_by_link() -> None:
    assert not check("He sells them for $<<9*2=18>>18.").errors
    assert errors("He sells them for $<<9*2=19>>19.") == ["9 * 2 = 19"]
    chained = check("She teaches <<5*75+120=675+120=795>>795 students.")
    assert [s.expression for s in chained.errors] == ["5 * 75 + 120 = 675 + 120"]
    shown = check("So 3 * 2 = <<3*2=6>>0.06 of it.")
    assert shown.annotation_mismatches == ["<<3*2=6>>0.06"]


def test_an_open_annotation_is_reported_as_cut_off() -> None:
    assert check("a total of 15 + 25 = <<15+2").open_annotation
    assert not check("a total of 15 + 25 = <<15+25=40>>40").open_annotation


@pytest.mark.parametrize(
    "text",
    [
        "x * 4 + 8 = 40, so x * 4 = 32",  # algebra: the numeric tail of an equation with a variable
        "3F - 3 = 85\n3F = 88",
        "10x + x = 11x = 88,000",
        "A = F - 12 = 29 - 12 = 17",
        "1 dozen = 12 eggs and 2 hours = 120 minutes",  # conversions, not calculations
        "She is 84 / 12 = 7 dozens.",
        "a 6-inch piece = half a foot",
    ],
)
def test_what_cannot_be_read_as_arithmetic_is_skipped_not_flagged(text: str) -> None:
    assert not check(text).errors


def test_a_number_cut_mid_group_is_never_an_operand() -> None:
    kinds = [t.kind for t in tokenize("$130,00")]
    assert kinds == ["bad"]
    assert not check("80,000 + 50,000 = $130,00").errors


def test_steps_come_in_text_order() -> None:
    result = check("First 2 + 2 = <<2+2=4>>4.\nThen 4 * 3 = 12.\nFinally 12 - 1 = 11.")
    assert [s.claimed for s in result.steps][-1] == 11
    assert result.results[0] == 4
