"""GloVe matrix from .txt / .zip / .npy / .pkl sources (§1.2 step 9, §1.3, B34, B35)."""

from __future__ import annotations

import pickle
import zipfile

import numpy as np
import pandas as pd
import pytest

from dualvgr.core.errors import DataError
from dualvgr.text.glove import GloveWarning, load_glove

VOCAB = ["<NULL>", "<UNK>", "the", "man", ".", "null", "nan", "NA", "None", "N/A", "absent"]


def vec(seed: int, dim: int = 4) -> list[float]:
    return [round(seed + i / 10, 3) for i in range(dim)]


def line(word: str, values: list[float]) -> str:
    return word + " " + " ".join(str(v) for v in values) + "\n"


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def test_rows_follow_the_vocabulary_and_oov_rows_are_zero(tmp_path):
    path = write(tmp_path / "g.txt", line("man", vec(2)) + line("woman", vec(9)) + line("the", vec(1)))
    glove = load_glove(path, VOCAB)
    assert glove.matrix.dtype == np.float32 and glove.matrix.shape == (len(VOCAB), 4)
    assert glove.matrix[2].tolist() == pytest.approx(vec(1)) and glove.matrix[3].tolist() == pytest.approx(vec(2))
    assert not glove.matrix[[0, 1, 4, 10]].any(), "<NULL>, <UNK> and words absent from GloVe get zero rows"
    s = glove.stats
    assert (s.dim, s.vocabulary_size, s.found, s.oov, s.entries_read, s.malformed_lines) == (4, 11, 2, 9, 3, 0)
    assert s.oov_rate == pytest.approx(9 / 11) and s.format == "txt"


def test_b34_glove_token_with_spaces(tmp_path):
    text = line(".", vec(6)) + line(". . .", vec(5)) + line("the man", vec(7)) + line("man", vec(8))
    glove = load_glove(write(tmp_path / "g.txt", text), VOCAB + [". . ."])
    assert glove.matrix[4].tolist() == pytest.approx(vec(6)), "'.' must not take the vector of '. . .'"
    assert glove.matrix[11].tolist() == pytest.approx(vec(5)), (
        "a word with spaces is everything before the last D fields"
    )
    assert glove.matrix[3].tolist() == pytest.approx(vec(8)), "'the man' is not 'the' nor 'man'"
    assert glove.matrix[2].tolist() == [0.0] * 4
    assert glove.stats.malformed_lines == 0, "a word with spaces is not malformed"
    with pytest.raises(pd.errors.ParserError):  # what the original's pandas parse does with such a line (B34)
        pd.read_csv(tmp_path / "g.txt", sep=" ", quoting=3, header=None, index_col=0)


def test_b34_na_like_words_are_ordinary_words(tmp_path):
    words = ["null", "nan", "NA", "None", "N/A"]
    path = write(tmp_path / "g.txt", "".join(line(w, vec(i)) for i, w in enumerate(words)))
    glove = load_glove(path, VOCAB)
    for i, word in enumerate(words):
        assert glove.matrix[VOCAB.index(word)].tolist() == pytest.approx(vec(i)), f"{word!r} must keep its own vector"
    original = pd.read_csv(path, sep=" ", quoting=3, header=None, index_col=0)
    assert original.index.isna().all(), "the original's pandas parse turned every NA-like word into NaN (B34)"


def test_duplicates_last_wins(tmp_path):
    path = write(tmp_path / "g.txt", line("man", vec(1)) + line("the", vec(2)) + line("man", vec(3)))
    glove = load_glove(path, VOCAB)
    assert glove.matrix[3].tolist() == pytest.approx(vec(3)), "the last line of a duplicated word wins, as the original"
    assert (glove.stats.found, glove.stats.duplicate_words) == (2, 1)


def test_malformed_lines_are_counted_and_skipped(tmp_path):
    text = (
        line("the", vec(1))
        + "man 1.0 2.0\n"  # too few fields
        + "man 1.0 x 3.0 4.0\n"  # non-float in a vocabulary word's line
        + "\n"  # blank
        + line("man", vec(4))
        + "other 1.0 oops 3.0 4.0\n"  # non-float in a line nobody needs: not parsed, not counted
        + " 1.0 2.0 3.0 4.0\n"  # empty word
    )
    with pytest.warns(GloveWarning, match=r"skipped 4 malformed line\(s\) of 7") as record:
        glove = load_glove(write(tmp_path / "g.txt", text), VOCAB)
    assert "line 2" in str(record[0].message), "the warning shows examples with line numbers"
    assert glove.matrix[3].tolist() == pytest.approx(vec(4)) and glove.stats.malformed_lines == 4


def test_crlf_and_trailing_space(tmp_path):
    path = tmp_path / "g.txt"
    path.write_bytes(b"the 1 2 3 4 \r\nman 5 6 7 8\r\n")
    glove = load_glove(path, VOCAB)
    assert glove.matrix[2].tolist() == [1, 2, 3, 4] and glove.matrix[3].tolist() == [5, 6, 7, 8]


def test_dimension_is_inferred_and_checked(tmp_path):
    path = write(tmp_path / "g.txt", line("the", vec(1, dim=5)) + line("man", vec(2, dim=5)))
    assert load_glove(path, VOCAB).matrix.shape == (len(VOCAB), 5)
    with pytest.raises(DataError, match=r"5-d vectors, expected 300"):
        load_glove(path, VOCAB, expected_dim=300)


def test_zip_is_streamed_like_the_text(tmp_path):
    text = line("man", vec(2)) + line(". . .", vec(5)) + line("the", vec(1))
    archive = tmp_path / "glove.840B.300d.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("glove.840B.300d.txt", text)
    from_zip = load_glove(archive, VOCAB)
    from_txt = load_glove(write(tmp_path / "g.txt", text), VOCAB)
    np.testing.assert_array_equal(from_zip.matrix, from_txt.matrix)
    assert from_zip.stats.format == "zip" and from_zip.stats.found == 2
    assert not any(p.suffix == ".txt" and p.name != "g.txt" for p in tmp_path.iterdir()), "nothing is extracted"
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr("README.txt", "x")
    with pytest.raises(DataError, match="expected one GloVe .txt"):
        load_glove(archive, VOCAB)


def test_prepared_npy(tmp_path):
    matrix = np.zeros((len(VOCAB), 300), dtype=np.float32)
    matrix[3] = 1.0
    np.save(tmp_path / "glove.npy", matrix)
    glove = load_glove(tmp_path / "glove.npy", VOCAB, expected_dim=300)
    np.testing.assert_array_equal(glove.matrix, matrix)
    assert (glove.stats.found, glove.stats.format) == (1, "npy")


@pytest.mark.parametrize("shape", [(len(VOCAB) + 1, 300), (300,), (len(VOCAB), 300, 1)])
def test_prepared_npy_with_wrong_shape_is_a_clear_error(tmp_path, shape):
    np.save(tmp_path / "glove.npy", np.zeros(shape, dtype=np.float32))
    with pytest.raises(
        DataError, match=rf"expected a float \({len(VOCAB)}, D\) matrix aligned with the question vocabulary"
    ):
        load_glove(tmp_path / "glove.npy", VOCAB)


def test_prepared_npy_refuses_pickled_objects(tmp_path):
    np.save(tmp_path / "glove.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="not a plain numeric .npy"):
        load_glove(tmp_path / "glove.npy", VOCAB)


def test_original_glove_pickle(tmp_path):
    original = {
        "the": np.array(vec(1, 300), dtype=np.float64),
        "man": np.array(vec(2, 300)),
        float("nan"): np.ones(300),
    }
    with open(tmp_path / "glove.840.300d.pkl", "wb") as f:
        pickle.dump(original, f, protocol=3)  # Python 3.7's default, as txt2pickle.py wrote it
    glove = load_glove(tmp_path / "glove.840.300d.pkl", VOCAB, expected_dim=300)
    assert glove.matrix[2].tolist() == pytest.approx(vec(1, 300)) and glove.stats.found == 2
    assert (glove.stats.entries_read, glove.stats.format) == (3, "pkl")


def test_values_equal_the_original_pandas_parse(tmp_path):
    rng = np.random.default_rng(0)
    words = ["the", "man", "woman", "."]
    text = "".join(w + " " + " ".join(f"{v:.6f}" for v in rng.normal(size=300)) + "\n" for w in words)
    path = write(tmp_path / "g.txt", text)
    df = pd.read_csv(path, sep=" ", quoting=3, header=None, index_col=0)
    original = {key: val.values for key, val in df.T.items()}  # txt2pickle.py
    expected = np.asarray([original.get(t, np.zeros(300)) for t in VOCAB], dtype=np.float32)  # preprocess_questions
    np.testing.assert_array_equal(
        load_glove(path, VOCAB).matrix, expected, err_msg="float32 rows must equal the original's"
    )


def test_missing_or_unknown_source(tmp_path):
    with pytest.raises(DataError, match="GloVe source not found"):
        load_glove(tmp_path / "glove.840B.300d.txt", VOCAB)
    with pytest.raises(DataError, match="expected one of"):
        load_glove(write(tmp_path / "glove.csv", "the 1\n"), VOCAB)
    with pytest.raises(DataError, match="not a readable zip"):
        load_glove(write(tmp_path / "glove.zip", "not a zip"), VOCAB)
    with pytest.raises(DataError, match="no GloVe lines"):
        load_glove(write(tmp_path / "empty.txt", "\n"), VOCAB)


@pytest.mark.parametrize("bad, shown", [("nan", "nan"), ("inf", "inf"), ("-inf", "-inf"), ("1e39", "inf")])
def test_poisoned_txt_vector_names_the_file_line_and_word(tmp_path, bad, shown):
    path = write(tmp_path / "g.txt", line("the", vec(1)) + line("woman", [float("nan")] * 4)
                 + "man 1.0 2.0 " + bad + " 4.0\n")
    with pytest.raises(DataError) as err:
        load_glove(path, VOCAB)
    assert str(err.value) == (
        f"GloVe source {path}: 1 vocabulary word(s) have a vector with NaN or infinite values (or values beyond "
        f"float32's range), e.g. line 3 ('man'): value 3 of 4 is {shown}. Such a vector would make the training "
        f"loss NaN: fix or remove those entries, or re-download the file"
    ), "a NaN outside the vocabulary ('woman', line 2) is never read; the poisoned vocabulary line is named"


def test_poisoned_zip_vector_names_the_archive_line_and_word(tmp_path):
    archive = tmp_path / "glove.840B.300d.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("glove.840B.300d.txt", line("man", vec(2)) + line("the", [1.0, float("nan"), 2.0, 3.0]))
    with pytest.raises(DataError, match=rf"GloVe source {archive}: 1 vocabulary word.*line 2 \('the'\): value 2 of 4 "
                                        rf"is nan"):
        load_glove(archive, VOCAB)


def test_poisoned_npy_row_names_the_file_row_and_word(tmp_path):
    matrix = np.zeros((len(VOCAB), 4), dtype=np.float64)
    matrix[3, 0] = np.inf
    matrix[5, 3] = 1e300  # finite in float64, infinite as the float32 the matrix is stored in
    np.save(tmp_path / "glove.npy", matrix)
    with pytest.raises(DataError, match=r"glove.npy: 2 vocabulary word\(s\) .* e.g. row 3 \('man'\): value 1 of 4 is "
                                        r"inf; row 5 \('null'\): value 4 of 4 is inf\. "):
        load_glove(tmp_path / "glove.npy", VOCAB)


def test_poisoned_pickle_entry_names_the_file_entry_and_word(tmp_path):
    original = {"the": np.ones(4), "woman": np.ones(4), "man": np.array([1.0, 2.0, np.nan, 4.0])}
    with open(tmp_path / "glove.840.300d.pkl", "wb") as f:
        pickle.dump(original, f, protocol=3)
    with pytest.raises(DataError, match=r"glove.840.300d.pkl: 1 vocabulary word.* entry 2 \('man'\): value 3 of 4 is "
                                        r"nan"):
        load_glove(tmp_path / "glove.840.300d.pkl", VOCAB)


@pytest.mark.parametrize("dtype", [np.int64, np.bool_, np.complex64])
def test_prepared_npy_with_wrong_dtype_is_a_clear_error(tmp_path, dtype):
    np.save(tmp_path / "glove.npy", np.zeros((len(VOCAB), 300), dtype=dtype))
    with pytest.raises(DataError) as err:
        load_glove(tmp_path / "glove.npy", VOCAB)
    assert str(err.value) == (
        f"prepared GloVe matrix {tmp_path / 'glove.npy'} holds {np.dtype(dtype)} values, expected floating point "
        f"(float32, as the questions stage writes it): it is not a GloVe matrix — rebuild it from glove.840B.300d.txt"
    )


@pytest.mark.parametrize("content", [b"", b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order'"])
def test_prepared_npy_that_is_empty_or_truncated_is_a_clear_error(tmp_path, content):
    (tmp_path / "glove.npy").write_bytes(content)
    with pytest.raises(DataError, match=r"glove.npy is not a plain numeric .npy file \(.*\): rebuild it from "
                                        r"glove.840B.300d.txt"):
        load_glove(tmp_path / "glove.npy", VOCAB)


def test_prepared_npy_with_the_wrong_width_names_the_word_dim(tmp_path):
    np.save(tmp_path / "glove.npy", np.zeros((len(VOCAB), 50), dtype=np.float32))
    with pytest.raises(DataError, match=r"glove.npy has 50-d vectors, expected 300 \(the model's word_dim\)"):
        load_glove(tmp_path / "glove.npy", VOCAB, expected_dim=300)
