"""regions_for_numbers: the fast calling-code path must agree with a full phonenumbers parse.

Protects: output aligned with the input (duplicates, nulls), shared calling codes resolved per number, and
numbers that do not parse kept as null rather than raising.
"""

import phonenumbers
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.phones import regions_for_numbers


def region_by_full_parse(number: str) -> str | None:
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(number, None))
    except phonenumbers.NumberParseException:
        return None
    return None if region in (None, "001") else region


def test_output_is_aligned_with_the_input() -> None:
    numbers = pl.Series("to", ["+31612345678", None, "+14165550123", "+31612345678", "junk", "+14155550123"])
    regions = regions_for_numbers(numbers)
    assert regions.name == "to"
    assert regions.to_list() == ["NL", None, "CA", "NL", None, "US"]


def test_shared_calling_codes_are_resolved_per_number() -> None:
    numbers = pl.Series(["+79123456789", "+77012345678", "+390612345678", "+390669812345"])
    assert regions_for_numbers(numbers).to_list() == [region_by_full_parse(n) for n in numbers]
    assert regions_for_numbers(numbers).to_list()[:2] == ["RU", "KZ"]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.builds(
            lambda code, rest: f"+{code}{rest}",
            st.sampled_from(sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)),
            st.text("0123456789", min_size=0, max_size=13),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_agrees_with_a_full_parse(numbers: list[str]) -> None:
    assert regions_for_numbers(pl.Series(numbers)).to_list() == [region_by_full_parse(n) for n in numbers]
