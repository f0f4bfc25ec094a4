"""Country (ISO 3166-1 alpha-2 region) of phone numbers, from `phonenumbers`' metadata.

Parsing a number costs about 30 us, so regions are computed once per distinct number, and numbers whose
country calling code belongs to a single region (+31 is NL, +49 is DE) skip the parse entirely: only shared
codes (+1, +7, +44, ...) and numbers not in plain E.164 form go through `phonenumbers.parse`.
"""

from functools import cache, lru_cache

import phonenumbers
import polars as pl

# Plain E.164: '+', a non-zero first digit, 7 to 15 digits in all (ITU-T E.164 caps numbers at 15 digits).
_E164_PATTERN = r"^\+[1-9]\d{6,14}$"
# phonenumbers' region for non-geographic codes (+800, +882, ...): not a country, so it maps to null.
_NON_GEOGRAPHIC_REGION = "001"


@cache
def _calling_codes() -> pl.DataFrame:
    """One row per country calling code: its region when the code has exactly one, else null (shared)."""
    codes = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
    regions = [
        region
        if len(phonenumbers.COUNTRY_CODE_TO_REGION_CODE[code]) == 1
        and (region := phonenumbers.region_code_for_country_code(code)) != _NON_GEOGRAPHIC_REGION
        else None
        for code in codes
    ]
    return pl.DataFrame(
        {"calling_code": codes, "single_region": regions},
        schema={"calling_code": pl.Int32, "single_region": pl.String},
    )


@lru_cache(maxsize=1 << 18)
def _region_by_parsing(number: str) -> str | None:
    """Full parse for numbers the calling code alone cannot place (shared codes, spaces, punctuation).

    Cached: a process that flattens day after day (backfills, rebuilds) meets the same recipients again.
    """
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(parsed)
    return None if region in (None, _NON_GEOGRAPHIC_REGION) else region


def regions_for_numbers(numbers: pl.Series) -> pl.Series:
    """Region of each phone number (aligned with the input); null for nulls and numbers that do not parse."""
    calling_codes = _calling_codes()
    distinct = pl.DataFrame({"number": numbers.cast(pl.String)}).unique().drop_nulls()
    is_e164 = pl.col("number").str.contains(_E164_PATTERN)
    # E.164 calling codes are prefix-free: at most one of the 1-, 2- and 3-digit prefixes is a code.
    known_codes = calling_codes["calling_code"].to_list()
    prefixes = [pl.col("number").str.slice(1, length).cast(pl.Int32) for length in (1, 2, 3)]
    calling_code = pl.coalesce([pl.when(prefix.is_in(known_codes)).then(prefix) for prefix in prefixes])
    placed = (
        distinct.with_columns(calling_code=pl.when(is_e164).then(calling_code))
        .join(calling_codes, on="calling_code", how="left")
        .with_columns(
            needs_parse=pl.col("single_region").is_null()
            & pl.col("number").str.starts_with("+")
            & (~is_e164 | pl.col("calling_code").is_not_null())
        )
    )
    to_parse = placed.filter("needs_parse")["number"]
    parsed = pl.DataFrame(
        {"number": to_parse, "parsed_region": [_region_by_parsing(number) for number in to_parse]},
        schema={"number": pl.String, "parsed_region": pl.String},
    )
    regions = placed.join(parsed, on="number", how="left").select(
        "number", region=pl.coalesce("single_region", "parsed_region")
    )
    return (
        pl.DataFrame({"number": numbers.cast(pl.String)})
        .join(regions, on="number", how="left", maintain_order="left")
        .get_column("region")
        .alias(numbers.name)
    )


def country_code(number: pl.Expr) -> pl.Expr:
    """Expression form of `regions_for_numbers`, for use inside a lazy query."""
    return number.map_batches(regions_for_numbers, return_dtype=pl.String)
