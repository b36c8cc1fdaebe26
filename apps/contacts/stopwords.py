"""Stop and start words, as data. A message counts only when the whole message (trimmed, case-folded,
accents stripped, surrounding punctuation removed) is one of these: "stop" opts out, "please stop
sending me offers" does not.

To add a language, add one entry; tests/contacts/test_stopwords.py checks every entry and that no
normalised word is both a stop and a start word.
"""

from __future__ import annotations

import unicodedata

OPT_OUT = "opt_out"
OPT_IN = "opt_in"

# language code -> {"opt_out": [...], "opt_in": [...]}; written as people type them, accents and all.
KEYWORDS: dict[str, dict[str, list[str]]] = {
    "en": {"opt_out": ["STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPT OUT",
                       "OPTOUT", "OPT-OUT", "REVOKE"],
           "opt_in": ["START", "UNSTOP", "SUBSCRIBE", "OPT IN", "OPTIN", "OPT-IN", "RESUME"]},
    "fr": {"opt_out": ["ARRET", "ARRÊT", "ARRÊTER", "DÉSINSCRIRE", "DESINSCRIPTION", "DÉSABONNER", "STOP SVP"],
           "opt_in": ["DÉMARRER", "REPRENDRE", "ABONNER", "M'ABONNER", "INSCRIRE"]},
    "es": {"opt_out": ["BAJA", "PARAR", "CANCELAR", "DETENER", "DARSE DE BAJA", "DESUSCRIBIR", "ALTO"],
           "opt_in": ["ALTA", "SUSCRIBIR", "SUSCRIBIRME", "COMENZAR", "REANUDAR"]},
    "pt": {"opt_out": ["PARE", "SAIR", "DESCADASTRAR", "DESINSCREVER", "CANCELAR INSCRIÇÃO", "PARAR"],
           "opt_in": ["INICIAR", "VOLTAR", "INSCREVER", "ASSINAR", "RETOMAR"]},
    "de": {"opt_out": ["ABMELDEN", "STOPP", "ABBESTELLEN", "BEENDEN", "KÜNDIGEN"],
           "opt_in": ["ANMELDEN", "ABONNIEREN", "STARTEN", "FORTSETZEN"]},
    "it": {"opt_out": ["ANNULLA ISCRIZIONE", "DISISCRIVIMI", "FERMA", "BASTA", "DISISCRIVI"],
           "opt_in": ["ISCRIVIMI", "ISCRIVI", "RIPRENDI", "AVVIA"]},
    "nl": {"opt_out": ["AFMELDEN", "UITSCHRIJVEN", "STOPPEN"],
           "opt_in": ["AANMELDEN", "INSCHRIJVEN", "HERVATTEN"]},
    "sv": {"opt_out": ["AVSLUTA", "AVREGISTRERA", "SLUTA"],
           "opt_in": ["PRENUMERERA", "STARTA", "ÅTERUPPTA"]},
    "no": {"opt_out": ["AVSLUTT", "MELD AV", "AVMELD"],
           "opt_in": ["MELD PÅ", "GJENOPPTA"]},
    "da": {"opt_out": ["AFMELD", "AFMELDE", "STOP TILMELDING"],
           "opt_in": ["TILMELD", "GENOPTAG"]},
    "fi": {"opt_out": ["LOPETA", "PERU TILAUS", "PERUUTA"],
           "opt_in": ["ALOITA", "TILAA", "JATKA"]},
    "pl": {"opt_out": ["ZATRZYMAJ", "WYPISZ", "REZYGNUJĘ", "ANULUJ"],
           "opt_in": ["ZAPISZ", "WZNÓW", "SUBSKRYBUJ"]},
    "cs": {"opt_out": ["ODHLÁSIT", "ZASTAVIT", "ZRUŠIT"],
           "opt_in": ["PŘIHLÁSIT", "OBNOVIT"]},
    "sk": {"opt_out": ["ODHLÁSIŤ", "ZASTAVIŤ", "ZRUŠIŤ"],
           "opt_in": ["PRIHLÁSIŤ", "OBNOVIŤ"]},
    "hu": {"opt_out": ["LEIRATKOZÁS", "LEÁLLÍTÁS", "MEGÁLLÍT"],
           "opt_in": ["FELIRATKOZÁS", "INDÍTÁS"]},
    "ro": {"opt_out": ["DEZABONARE", "OPRIRE", "ANULARE"],
           "opt_in": ["ABONARE", "PORNIRE", "RELUARE"]},
    "tr": {"opt_out": ["İPTAL", "DURDUR", "ABONELİKTEN ÇIK", "ÇIKIŞ"],
           "opt_in": ["BAŞLAT", "ABONE OL", "DEVAM"]},
    "el": {"opt_out": ["ΔΙΑΚΟΠΗ", "ΣΤΑΜΑΤΑ", "ΑΠΕΓΓΡΑΦΗ"],
           "opt_in": ["ΕΝΑΡΞΗ", "ΕΓΓΡΑΦΗ"]},
    "ru": {"opt_out": ["СТОП", "ОТПИСАТЬСЯ", "ОТПИСКА", "ОТМЕНА", "ХВАТИТ"],
           "opt_in": ["СТАРТ", "ПОДПИСАТЬСЯ", "ВОЗОБНОВИТЬ"]},
    "uk": {"opt_out": ["ВІДПИСАТИСЯ", "ЗУПИНИТИ", "СКАСУВАТИ"],
           "opt_in": ["ПІДПИСАТИСЯ", "ПОЧАТИ", "ПОНОВИТИ"]},
    "bg": {"opt_out": ["ОТПИСВАНЕ", "СПРИ"],
           "opt_in": ["АБОНИРАНЕ", "ВЪЗОБНОВИ"]},
    "sr": {"opt_out": ["ОДЈАВА", "ODJAVA", "ЗАУСТАВИ"],
           "opt_in": ["ПРИЈАВА", "PRIJAVA"]},
    "hr": {"opt_out": ["ODJAVI", "ZAUSTAVI", "PREKINI"],
           "opt_in": ["PRIJAVI", "NASTAVI"]},
    "ar": {"opt_out": ["إيقاف", "ايقاف", "توقف", "إلغاء الاشتراك", "الغاء الاشتراك", "الغاء"],
           "opt_in": ["بدء", "ابدأ", "اشتراك", "استئناف"]},
    "he": {"opt_out": ["הסר", "עצור", "הפסק", "ביטול"],
           "opt_in": ["הרשמה", "התחל", "חידוש"]},
    "fa": {"opt_out": ["لغو", "توقف اشتراک", "لغو اشتراک"],
           "opt_in": ["شروع", "عضویت"]},
    "hi": {"opt_out": ["रोकें", "रोको", "बंद करें", "सदस्यता रद्द करें"],
           "opt_in": ["शुरू करें", "सदस्यता लें"]},
    "bn": {"opt_out": ["বন্ধ", "বন্ধ করুন"],
           "opt_in": ["শুরু", "শুরু করুন"]},
    "ur": {"opt_out": ["بند کریں", "روکیں"],
           "opt_in": ["شروع کریں"]},
    "id": {"opt_out": ["BERHENTI", "BERHENTI LANGGANAN", "HENTIKAN", "BATAL"],
           "opt_in": ["MULAI", "LANGGANAN", "LANJUTKAN"]},
    "ms": {"opt_out": ["HENTI", "BERHENTI MELANGGAN", "NYAHLANGGAN"],
           "opt_in": ["MELANGGAN", "MULAKAN", "SAMBUNG"]},
    "tl": {"opt_out": ["TIGIL", "ITIGIL", "HINTO"],
           "opt_in": ["SIMULA", "MAG-SUBSCRIBE"]},
    "vi": {"opt_out": ["DỪNG", "HỦY", "HỦY ĐĂNG KÝ", "NGỪNG"],
           "opt_in": ["BẮT ĐẦU", "ĐĂNG KÝ", "TIẾP TỤC"]},
    "th": {"opt_out": ["หยุด", "ยกเลิก", "ยกเลิกการสมัคร"],
           "opt_in": ["เริ่ม", "สมัคร"]},
    "zh": {"opt_out": ["停止", "取消订阅", "取消訂閱", "退订", "退訂", "退出"],
           "opt_in": ["开始", "開始", "订阅", "訂閱", "恢复", "恢復"]},
    "ja": {"opt_out": ["配信停止", "ストップ", "購読解除", "やめる"],
           "opt_in": ["配信開始", "スタート", "購読", "再開"]},
    "ko": {"opt_out": ["중지", "수신거부", "구독취소", "그만"],
           "opt_in": ["시작", "구독", "수신동의"]},
    "sw": {"opt_out": ["SIMAMA", "ACHA", "JIONDOE"],
           "opt_in": ["ANZA", "JIUNGE"]},
    "af": {"opt_out": ["STAAK", "KANSELLEER", "MELD AF"],
           "opt_in": ["BEGIN", "HERVAT"]},
    "ca": {"opt_out": ["BAIXA", "ATURAR", "CANCEL·LAR"],
           "opt_in": ["ALTA", "SUBSCRIURE", "REPRENDRE"]},
    "ta": {"opt_out": ["நிறுத்து", "நிறுத்தவும்"],
           "opt_in": ["தொடங்கு"]},
    "lt": {"opt_out": ["ATSISAKYTI", "SUSTABDYTI"],
           "opt_in": ["PRENUMERUOTI", "PRADĖTI"]},
}

# Letters NFKD does not decompose but people type without their stroke or dot.
_FOLD = str.maketrans({"ı": "i", "ł": "l", "ø": "o", "đ": "d", "æ": "ae", "œ": "oe"})
_PUNCTUATION_EDGES = " \t\r\n.,;:!?¡¿\"'`«»“”‘’()[]{}*_~-。！？、，؟؛٫۔…"
_MAX_KEYWORD_CHARS = 64


def normalize_keyword(text: str) -> str:
    """Trim, case-fold, strip accents (NFKD minus combining marks, then NFC so Hangul/kana recompose),
    fold full-width forms, collapse inner whitespace, drop punctuation at the edges."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    composed = unicodedata.normalize("NFC", stripped).translate(_FOLD)
    # Turkish dotted capital İ case-folds to "i̇" (i + combining dot): handled by dropping combining marks.
    return " ".join(composed.split()).strip(_PUNCTUATION_EDGES)


def _build_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for entry in KEYWORDS.values():
        for status in (OPT_OUT, OPT_IN):
            for word in entry.get(status, []):
                index[normalize_keyword(word)] = status
    return index


_INDEX = _build_index()


def match_consent_keyword(text: str | None) -> str | None:
    """"opt_out" / "opt_in" when the whole message is a stop/start word, else None."""
    if not text or len(text) > _MAX_KEYWORD_CHARS * 2:
        return None
    return _INDEX.get(normalize_keyword(text))
