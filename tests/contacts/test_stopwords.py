import pytest

from apps.contacts.stopwords import KEYWORDS, OPT_IN, OPT_OUT, match_consent_keyword, normalize_keyword

LANGUAGES = sorted(KEYWORDS)


def test_there_are_at_least_thirty_languages():
    assert len(KEYWORDS) >= 30


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_language_stop_and_start_words_match_as_whole_messages(language):
    entry = KEYWORDS[language]
    assert entry[OPT_OUT], f"{language} has no stop word"
    assert entry[OPT_IN], f"{language} has no start word"
    for word in entry[OPT_OUT]:
        assert match_consent_keyword(word) == OPT_OUT, word
        assert match_consent_keyword(f"  {word.lower()}!  ") == OPT_OUT, word
        assert match_consent_keyword(f"please {word} now thanks") is None, word
    for word in entry[OPT_IN]:
        assert match_consent_keyword(word) == OPT_IN, word
        assert match_consent_keyword(f"\t{word.upper()}.\n") == OPT_IN, word
        assert match_consent_keyword(f"I want to {word} tomorrow") is None, word


def test_no_word_is_both_a_stop_and_a_start_word():
    stops = {normalize_keyword(w) for e in KEYWORDS.values() for w in e[OPT_OUT]}
    starts = {normalize_keyword(w) for e in KEYWORDS.values() for w in e[OPT_IN]}
    assert stops & starts == set()


@pytest.mark.parametrize("text", ["STOP", "UNSUBSCRIBE", "STOPALL", "CANCEL", "END", "QUIT", "ARRET", "ARRÊTER",
                                  "DESINSCRIRE", "BAJA", "PARAR", "CANCELAR", "ABMELDEN", "STOPP", "BERHENTI",
                                  "إيقاف", "停止", "取消订阅", "ОТПИСАТЬСЯ", "СТОП", "İPTAL"])
def test_the_issue_list_of_stop_words(text):
    assert match_consent_keyword(text) == OPT_OUT


@pytest.mark.parametrize("text", ["START", "UNSTOP", "SUBSCRIBE", "start", "Subscribe!"])
def test_the_issue_list_of_start_words(text):
    assert match_consent_keyword(text) == OPT_IN


@pytest.mark.parametrize("text,expected", [
    ("arrêter", OPT_OUT), ("ARRETER", OPT_OUT), ("désinscrire", OPT_OUT),  # accents either way
    ("iptal", OPT_OUT), ("IPTAL", OPT_OUT), ("çıkış", OPT_OUT), ("CIKIS", OPT_OUT),  # Turkish dotless i
    ("ＳＴＯＰ", OPT_OUT),  # full-width
    ("отписаться", OPT_OUT), ("Стоп", OPT_OUT),  # Cyrillic case-folding
    ("ايقاف", OPT_OUT), ("إِيقَاف", OPT_OUT),  # Arabic with and without hamza / harakat
    ("stop all", OPT_OUT), ("STOP   ALL", OPT_OUT),  # inner whitespace collapsed
    ("「停止」", None),  # CJK brackets are not stripped: not a bare keyword
])
def test_folding(text, expected):
    assert match_consent_keyword(text) == expected


@pytest.mark.parametrize("text", [None, "", "   ", "stop it", "don't stop", "STOP!!! NOW", "stopping", "restart",
                                  "x" * 500, "Please unsubscribe me", "停止了吗"])
def test_not_keywords(text):
    assert match_consent_keyword(text) is None
