"""The words keyword search indexes and asks for, the same on both graph stores."""

from __future__ import annotations

from app.adapters.search_words import MAX_QUERY_TERMS, fold, index_text, query_words, words
from app.adapters.sqlite_graph_rows import fts_any


def test_words_split_at_everything_but_letters_and_digits() -> None:
    assert words("Norway's St. Maurice’s Abbey, 1,000 U.S. snake_case") == [
        "norway", "s", "st", "maurice", "s", "abbey", "1", "000", "u", "s", "snake", "case",
    ]  # fmt: skip


def test_fold_strips_combining_marks_only() -> None:
    assert fold("Svěrák Kützkow Ma‘rūfābād") == "sverak kutzkow ma‘rufabad"
    assert fold("Łódź Ørsted Æsir Straße") == "łodz ørsted æsir straße"  # no decomposition
    assert fold("e\u0301") == "e"  # a combining accent on its own, too


def test_index_text_is_the_words_space_separated() -> None:
    assert index_text("  The Stars-Go  Blue!\n") == "the stars go blue"
    assert index_text("!!! …") == ""


def test_query_words_are_distinct_in_order_and_bounded() -> None:
    assert query_words("Engine engine ENGINE babbage Engine") == ["engine", "babbage"]
    many = " ".join(f"w{i}" for i in range(100))
    assert query_words(many) == [f"w{i}" for i in range(MAX_QUERY_TERMS)]
    assert query_words("?? -- ::") == []


def test_fts_any_quotes_every_word_so_no_operator_survives() -> None:
    assert fts_any(query_words('AND OR NOT NEAR "x" col:y*')) == '"near" OR "x" OR "col" OR "y"'
    assert fts_any(query_words("AND OR NOT")) == '"and" OR "or" OR "not"'  # nothing else: kept
    assert query_words("¿?") == []


def test_function_words_are_left_out_unless_nothing_else_is_asked() -> None:
    assert query_words("Who is the director of The Godfather?") == ["director", "godfather"]
    assert query_words("The Who") == ["the", "who"]  # a query of function words only
    assert query_words("") == []
