"""Question preprocessing (dualvgr-original.md §1.2-1.4): tokenise, build vocabularies, encode, attach GloVe.

The questions stage calls :func:`prepare_questions`; the trainer reads its outputs with :func:`load_vocabulary`,
:func:`load_encoded_questions` and :func:`load_glove` (on ``glove.npy``). Original files import with
:func:`load_vocabulary` (vocab.json), :func:`import_original_questions` and :func:`import_original_glove` (``.pt``).
"""

from dualvgr.text.encode import (
    QUESTION_TYPES,
    EncodedQuestions,
    QuestionWarning,
    SplitStats,
    accuracy_by_type,
    encode_split,
    question_type,
    tokenize_split,
)
from dualvgr.text.glove import GloveMatrix, GloveStats, GloveWarning, load_glove
from dualvgr.text.original import import_original_glove, import_original_questions, restricted_load
from dualvgr.text.prepare import QuestionsResult, prepare_questions
from dualvgr.text.storage import (
    load_encoded_questions,
    questions_file,
    read_sidecar,
    save_encoded_questions,
    save_glove_matrix,
)
from dualvgr.text.tokenize import QuestionTokenizer, normalise_question, tokenize
from dualvgr.text.vocabulary import (
    Vocabulary,
    build_vocabulary,
    load_vocabulary,
    save_vocabulary,
    unknown_answer_label,
)

__all__ = [
    "QUESTION_TYPES",
    "EncodedQuestions",
    "GloveMatrix",
    "GloveStats",
    "GloveWarning",
    "QuestionTokenizer",
    "QuestionWarning",
    "QuestionsResult",
    "SplitStats",
    "Vocabulary",
    "accuracy_by_type",
    "build_vocabulary",
    "encode_split",
    "import_original_glove",
    "import_original_questions",
    "load_encoded_questions",
    "load_glove",
    "load_vocabulary",
    "normalise_question",
    "prepare_questions",
    "question_type",
    "questions_file",
    "read_sidecar",
    "restricted_load",
    "save_encoded_questions",
    "save_glove_matrix",
    "save_vocabulary",
    "tokenize",
    "tokenize_split",
    "unknown_answer_label",
]
