"""Feature hashing: stable across processes, the groups a FeatureSet names, bounded cost."""

import math
import subprocess
import sys
import zlib

import pytest
from modelyard_learn import blocks
from modelyard_learn.blocks import structure_features
from modelyard_learn.features import Featurizer, FeatureSet, Query, stable_hash


def test_stable_hash_is_crc32_of_utf8_not_pythons_salted_hash():
    assert stable_hash("w héllo") == zlib.crc32("w héllo".encode())
    code = (
        "from modelyard_learn.features import Featurizer, FeatureSet, Query; "
        "print(sorted(Featurizer(FeatureSet.build()).features(Query('Why is the VPN slow?')).items())[:5])"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONHASHSEED": seed}
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outs) == 1 and outs.pop().startswith("[(")


def test_groups_follow_the_feature_set():
    q = Query("Reset my password please", user_role="CTO", factors={"length": 0.5})
    words_only = Featurizer(FeatureSet.build(chars=None, ngrams=1, structure=False, context=False, factors=False)).features(q)
    with_bigrams = Featurizer(FeatureSet.build(chars=None, structure=False, context=False, factors=False)).features(q)
    full = Featurizer(FeatureSet.build()).features(q)
    assert len(words_only) == 4 + 1  # four words and the bias
    assert len(with_bigrams) == 4 + 3 + 1
    assert len(full) > len(with_bigrams) + 20  # character n-grams, structure, role, history, factor


def test_char_ngrams_carry_char_weight_and_words_are_scaled_by_length():
    fs = FeatureSet.build(structure=False, context=False, factors=False, ngrams=1, char_weight=0.25)
    f = Featurizer(fs)
    x = f.features(Query("abcd abcd abcd abcd"))
    word_index = f.word_hash("abcd") & f.mask
    assert abs(x[word_index] - 4 / 2) < 1e-9  # 4 occurrences x 1/sqrt(4 words)
    index, value = f.word_indices("abcd")[1]
    assert value == 0.25 and abs(x[index] - 4 * 0.25 / 2) < 1e-9


def test_structure_reads_options_numbers_negation_statements():
    s = structure_features("Which is NOT prime?\nA. 2\nB. 3\nC. 4\nD. 5\nAnswer:")
    assert s["options"] == 1.0 and s["numeric_options"] == 1.0 and s["negation"] == 1.0
    assert "statements" in structure_features("Statement 1 | x. Statement 2 | y.")
    assert "options" not in structure_features("How do I reset my password?")


@pytest.mark.parametrize("text", [
    "What is 12 + 7 = ?", "No digits, no operators here.", "Arabic-Indic \u0663\u0664 \u00d7 \u0665", "5 \u2264 x \u00b1 2",
    "Which is NOT true? Name the EXCEPTION.", "Is the API down, or is it DNS?", "ABc DEf GHi", "CAF\u00c9 OLE NOT", "a lone \ud800 ABC",
    "Statement 1 | Every group is abelian. Statement 2 | x.", "only lower case",
    "AB_C NOT_ NOTE ABC1 A1B2C3 XYZ QRS", "FALSE, or INCORRECT? The LEAST (NOT) EXCEPT-ABC", "\u00c9COLE NOT ABC\u00c9",
])
def test_structure_shortcuts_give_what_the_regexes_alone_give(text):
    """The ASCII digit/operator and three-capitals shortcuts skip a regex only where it cannot match."""
    shape = structure_features(text)
    assert ("log_numbers" in shape) == bool(blocks._NUMBER.search(text))
    assert ("log_operators" in shape) == bool(blocks.OPERATOR.search(text))
    assert ("negation" in shape) == bool(blocks._NEGATION.search(text))
    assert ("log_upper_words" in shape) == bool(blocks._UPPER_WORD.search(text))
    if "log_upper_words" in shape:
        assert shape["log_upper_words"] == math.log1p(len(blocks._UPPER_WORD.findall(text))) / 3.0
    if "log_numbers" in shape:
        assert shape["log_numbers"] == math.log1p(len(blocks._NUMBER.findall(text))) / 3.0


def test_tenant_feature_only_when_enabled_and_words_beyond_max_are_ignored():
    q = Query("hello", tenant="acme")
    assert Featurizer(FeatureSet.build(tenant=True)).features(q) != Featurizer(FeatureSet.build()).features(q)
    f = Featurizer(FeatureSet.build(max_words=5, chars=None, structure=False, context=False, factors=False))
    assert f.features(Query("a b c d e")) == f.features(Query("a b c d e f g h"))
    assert len(f.tokens("w " * 50)) == 5


def test_describe_names_the_features():
    f = Featurizer(FeatureSet.build())
    q = Query("Design the DR plan", user_role="cto", factors={"keywords_critical": 7.0})
    names = f.describe(q)
    assert set(f.features(q)) <= set(names)
    assert "word 'design'" in names.values() and "factor keywords_critical" in names.values() and "user role cto" in names.values()
