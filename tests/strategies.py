"""Hypothesis strategies shared by the property tests."""

from hypothesis import strategies as st

from hf_endpoint import ChunkingSettings

PIECES = [
    "the",
    "Quick",
    "won't",
    "U.S.A",
    "3.14",
    "1,000",
    "ice-box",
    "_",
    "__",
    "a_b",
    "e.g.",
    "日本語",
    "の",
    "東京",
    "中文",
    "分词",
    "。",
    "，",
    "々",
    "⺀",
    "カタカナ",
    "ー",
    "ภาษาไทย",
    "한국어",
    "مرحبا",
    "שָׁלוֹם",
    "Ελληνικά",
    "naïve",
    "e\u0301",
    "\u0301",
    "😀",
    "👍🏽",
    "👨‍👩‍👧",
    "🇫🇷",
    "\U00016fe4",
    "𝒳",
    " ",
    "  ",
    "\n",
    "\r\n",
    "\t",
    ".",
    "!",
    "?",
    ". ",
    "! ",
    "Mr. ",
    "\u00a0",
    "\u200b",
    "\x00",
    "\ud800",
    "\udfff",
]

# Zero width joiner sequences next to letters, digits, CJK and emoji: ICU's rule
# WB3c joins a ZWJ to a following pictographic character, with no word status.
ZWJ = "\u200d"
JOINED = list("2a中カ한_🙂❤Ⓜ©ー々") + ["ten", "日本語", "ภาษา", "👍🏽"]
zwj_text = st.lists(
    st.one_of(
        st.sampled_from(JOINED),
        st.sampled_from([ZWJ, ZWJ + "🙂", ZWJ + "❤", ZWJ + "Ⓜ", ZWJ + "\u0301", " ", "\n", ". "]),
    ),
    max_size=60,
).map("".join)

multilingual_text = st.one_of(
    st.lists(st.sampled_from(PIECES), max_size=300).map("".join),
    st.lists(st.one_of(st.sampled_from(PIECES), zwj_text), max_size=40).map("".join),
)
any_text = st.one_of(multilingual_text, st.text(max_size=400))


@st.composite
def chunking_settings(draw):
    strategy = draw(st.sampled_from(["sentence", "word"]))
    if strategy == "word":
        size = draw(st.integers(10, 40))
        overlap = draw(st.integers(1, size // 2))
        return ChunkingSettings(strategy="word", max_chunk_size=size, overlap=overlap)
    size = draw(st.integers(20, 40))
    return ChunkingSettings(
        strategy="sentence", max_chunk_size=size, sentence_overlap=draw(st.integers(0, 1))
    )


ASCII_TRICKY = "aZq19_.',;:\"- \n\r\t\x0b\x00!?"
ascii_text = st.one_of(
    st.text(alphabet=ASCII_TRICKY, max_size=300),
    st.lists(
        st.sampled_from(
            ["won't", "3.14", "1,000", "U.S.A", "e.g.", "a_b", "_", "__", " ", ". ", "x"]
        ),
        max_size=200,
    ).map("".join),
)

# Mostly ASCII with non-ASCII pieces here and there: exercises the cuts between
# the ASCII stretches and the spans ICU segments.
mixed_text = st.lists(
    st.one_of(
        st.sampled_from(
            ["the", " ", "  ", "\n", "won't", "3.14", "a_b", "_", ". ", ",", "x:y", "\r\n", "\t"]
        ),
        st.sampled_from(PIECES),
        zwj_text,
    ),
    max_size=200,
).map("".join)


# Documents with structure for the recursive strategy: paragraphs, lines, ATX and
# setext headings, around the multilingual pieces above.
STRUCTURE = ["\n", "\n\n", "\n\n\n", "\r\n", "\n# ", "\n## ", "\n### ", "\n---\n", "\n===\n"]
structured_text = st.lists(
    st.one_of(
        st.sampled_from(STRUCTURE),
        st.lists(st.sampled_from(PIECES), max_size=12).map("".join),
        st.lists(
            st.sampled_from(["word", " ", "words", ". ", "! ", "3.14", "e.g."]), max_size=40
        ).map("".join),
    ),
    max_size=60,
).map("".join)

# Separators that cut where ICU always breaks (before a line feed, before ". "),
# so a chunk's words are the same whether counted in the chunk or in the text.
SEPARATOR_LISTS = [["\\n\\n", "\\n"], ["\\n# ", "\\n", "[.!?] "], ["[.!?] "], ["(?!)"]]


@st.composite
def recursive_settings(draw):
    size = draw(st.integers(10, 40))
    choice = draw(st.sampled_from(["plaintext", "markdown", None, *range(len(SEPARATOR_LISTS))]))
    if isinstance(choice, int):
        return ChunkingSettings(
            strategy="recursive", max_chunk_size=size, separators=SEPARATOR_LISTS[choice]
        )
    return ChunkingSettings(strategy="recursive", max_chunk_size=size, separator_group=choice)


# Long documents that make many chunks at sizes 10 to 40: hundreds of words in sentences
# of one word to over a hundred (a long one goes through the word strategy), paragraphs
# and the separators' markup between them, ASCII words with the multilingual pieces among
# them. Short texts alone would be one whole-text chunk and never reach the split paths.
LONG_WORDS = ["the", "Quick", "fox", "won't", "3.14", "1,000", "U.S.A", "e.g.", "a_b", "x:y", "_"]
SENTENCE_ENDS = [". ", ". ", "! ", "? ", ".\n", "\n", "\r\n", ".  ", "", " ", "。", ".\u00a0"]
MARKUP = [*STRUCTURE, "\n# Title\n", "\n## Part two\n", "\nA heading\n---\n", "\n- item\n- item\n"]


@st.composite
def long_sentence(draw):
    """A sentence of 1 to 5, 6 to 25 or 26 to 120 pieces, mostly words."""
    low, high = draw(st.sampled_from([(1, 5), (6, 25), (26, 120)]))
    words = draw(
        st.lists(
            st.one_of(st.sampled_from(LONG_WORDS), st.sampled_from(PIECES)),
            min_size=low,
            max_size=high,
        )
    )
    gap = draw(st.sampled_from([" ", " ", " ", "  ", ", ", " — ", "\t"]))
    return gap.join(words) + draw(st.sampled_from(SENTENCE_ENDS))


long_text = st.lists(
    st.one_of(long_sentence(), long_sentence(), st.sampled_from(MARKUP)), min_size=6, max_size=40
).map("".join)

# Long texts of ASCII (now and then an em dash or an accented word, which ICU segments):
# the word marks path of the sentence strategy over many chunks, with the starts whose
# count takes an extra word (after a word and a line feed, a CR LF, a "!" with no space).
ASCII_ENDS = [". ", ". ", "! ", "? ", ".\n", "\n", "\r\n", "\r", ".  ", "", " ", "!", "?x", ".\n\n"]


@st.composite
def long_ascii_sentence(draw):
    """A sentence of 1 to 5, 6 to 25 or 26 to 120 words, mostly ASCII."""
    low, high = draw(st.sampled_from([(1, 5), (6, 25), (26, 120)]))
    words = draw(
        st.lists(
            st.one_of(
                st.sampled_from(LONG_WORDS),
                st.sampled_from(["x", "Ab", "__", "a.b", "!", "?", ":", "\t", "—", "naïve"]),
            ),
            min_size=low,
            max_size=high,
        )
    )
    gap = draw(st.sampled_from([" ", " ", " ", "  ", ", ", "\t", "\n", " — "]))
    return gap.join(words) + draw(st.sampled_from(ASCII_ENDS))


long_ascii_text = st.lists(
    st.one_of(long_ascii_sentence(), long_ascii_sentence(), st.sampled_from(MARKUP)),
    min_size=6,
    max_size=40,
).map("".join)
