"""Text that real watermarks say, in eight scripts.

Small seed lexicons (photographer-style names, stock-photo words, rights notices) are mixed with
pseudo-words generated from each script's own letters, so the model sees shapes of the script
rather than a memorised list of strings. Brand-like words are invented, not real trademarks.
"""

from __future__ import annotations

import numpy as np

LATIN_FIRST = (
    "Anna", "James", "Maria", "Lucas", "Sofia", "Noah", "Elena", "Marco", "Julia", "David", "Emma",
    "Pierre", "Chloé", "Jürgen", "Ana", "Pedro", "Lena", "Oskar", "Mia", "Tomás", "Ines", "Ryan",
    "Kate", "Olivier", "Zoë", "Erik", "Nadia", "Paolo", "Sara", "Jan", "Eva", "Hugo", "Alex", "Lea",
)  # fmt: skip
LATIN_LAST = (
    "Smith", "Müller", "Rossi", "García", "Dubois", "Novak", "Jensen", "Kowalski", "Silva", "Brown",
    "Moreau", "Fischer", "Bianchi", "López", "Lindqvist", "O'Neil", "Van Dijk", "Costa", "Weber",
    "Hansen", "Marín", "Kovač", "Nyström", "Ferreira", "Keller", "Morgan", "Walsh", "Hoffmann",
)  # fmt: skip
STOCK_WORDS = (
    "PREVIEW", "SAMPLE", "PROOF", "DRAFT", "COPYRIGHT", "DO NOT COPY", "WATERMARK", "COMP",
    "NOT FOR RESALE", "LICENSE REQUIRED", "UNLICENSED", "FOR REVIEW ONLY", "CONFIDENTIAL",
    "stock", "photo", "images", "pictures", "gallery", "studio", "photography", "media", "pixels",
    "visuals", "creative", "archive", "editorial", "royalty free", "shots", "lens", "frames",
)  # fmt: skip
BRAND_PARTS_A = (
    "pixel", "photo", "stock", "image", "snap", "shutter", "lens", "foto", "picto", "frame", "vista",
    "dream", "bright", "clear", "deep", "blue", "sun", "urban", "wild", "nova", "prime", "true", "ever",
)  # fmt: skip
BRAND_PARTS_B = (
    "stock", "shots", "pix", "bank", "vault", "hub", "works", "lab", "box", "point", "scape", "graphy",
    "cloud", "base", "grid", "nest", "field", "house", "media", "photos", "images", "spot", "zone",
)  # fmt: skip
TLDS = (".com", ".net", ".org", ".io", ".photo", ".de", ".fr", ".co.uk", ".es", ".it", ".ru", ".jp", ".pl")
LATIN_SYLLABLES = (
    "ka", "lo", "ri", "ma", "ne", "to", "sa", "vi", "den", "mar", "lin", "ber", "ton", "ska", "el", "an",
    "or", "is", "us", "ter", "gra", "fo", "pho", "sti", "que", "zel", "wen", "dor", "ral", "mi", "ce",
)  # fmt: skip

CYRILLIC_WORDS = (
    "ОБРАЗЕЦ", "ФОТО", "Все права защищены", "ПРЕДПРОСМОТР", "фотограф", "фотостудия", "Копирование запрещено",
    "Иван Петров", "Анна Смирнова", "Дмитрий Козлов", "Ольга Новикова", "Сергей Волков", "Мария Соколова",
    "фотобанк", "снимок", "изображение", "студия", "ЧЕРНОВИК", "Фото:",
)  # fmt: skip
CYRILLIC_LETTERS = "абвгдеёжзийклмнопрстуфхцчшщъыьэюя"
GREEK_WORDS = (
    "ΔΕΙΓΜΑ", "Φωτογραφία", "Με επιφύλαξη παντός δικαιώματος", "ΠΡΟΕΠΙΣΚΟΠΗΣΗ", "φωτογράφος",
    "Γιώργος Παπαδόπουλος", "Μαρία Νικολάου", "Ελένη Γεωργίου", "Νίκος Δημητρίου", "στούντιο", "εικόνες",
)  # fmt: skip
GREEK_LETTERS = "αβγδεζηθικλμνξοπρστυφχψωάέήίόύώ"
ARABIC_WORDS = (
    "عينة", "جميع الحقوق محفوظة", "تصوير", "صورة", "معاينة", "محمد أحمد", "فاطمة علي", "استوديو",
    "مصور", "ممنوع النسخ", "حقوق الطبع", "سارة حسن", "يوسف خالد", "صور", "نسخة تجريبية",
)  # fmt: skip
ARABIC_LETTERS = "ابتثجحخدذرزسشصضطظعغفقكلمنهوي"
DEVANAGARI_WORDS = (
    "नमूना", "सर्वाधिकार सुरक्षित", "फोटो", "छायाचित्र", "राहुल शर्मा", "प्रिया सिंह", "अमित कुमार",
    "स्टूडियो", "पूर्वावलोकन", "फोटोग्राफी", "नकल करना मना है", "सुनीता वर्मा", "चित्र",
)  # fmt: skip
DEVANAGARI_CONSONANTS = "कखगघचछजझटठडढतथदधनपफबभमयरलवशसह"
DEVANAGARI_SIGNS = ("", "ा", "ि", "ी", "ु", "ू", "े", "ै", "ो", "ौ", "ं", "्र")
CHINESE_WORDS = (
    "样本", "版权所有", "摄影", "图片", "预览", "王伟", "李娜", "张敏", "刘洋", "陈静", "禁止转载", "摄影工作室",
    "版權所有", "攝影", "圖片", "預覽", "图库", "正版图片", "视觉", "影像",
)  # fmt: skip
CHINESE_CHARS = (
    "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后"
    "小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长"
    "光影图片摄像视觉风景城市山水花海春夏秋冬"
)
JAPANESE_WORDS = (
    "サンプル", "見本", "無断転載禁止", "写真", "撮影", "佐藤 健", "田中 花子", "鈴木 一郎", "山本 さくら",
    "フォトスタジオ", "プレビュー", "著作権", "画像", "高橋 美咲", "ストックフォト",
)  # fmt: skip
KATAKANA = "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワンガギグゲゴパピプペポー"
HIRAGANA = "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわん"
KOREAN_WORDS = (
    "샘플", "무단 전재 금지", "사진", "촬영", "김민준", "이서연", "박지훈", "최수아", "미리보기", "저작권",
    "포토 스튜디오", "이미지", "정하은", "사진작가",
)  # fmt: skip


def _pick(rng: np.random.Generator, seq: tuple[str, ...] | str) -> str:
    return seq[int(rng.integers(len(seq)))]


def _latin_pseudo(rng: np.random.Generator, lo: int = 2, hi: int = 4) -> str:
    return "".join(_pick(rng, LATIN_SYLLABLES) for _ in range(int(rng.integers(lo, hi + 1))))


def _brand(rng: np.random.Generator) -> str:
    if rng.random() < 0.6:
        return _pick(rng, BRAND_PARTS_A) + _pick(rng, BRAND_PARTS_B)
    return _latin_pseudo(rng)


def _latin_name(rng: np.random.Generator) -> str:
    first = _pick(rng, LATIN_FIRST) if rng.random() < 0.75 else _latin_pseudo(rng, 2, 3).capitalize()
    last = _pick(rng, LATIN_LAST) if rng.random() < 0.7 else _latin_pseudo(rng, 2, 3).capitalize()
    return f"{first} {last}"


def _year(rng: np.random.Generator) -> str:
    return str(int(rng.integers(1998, 2027)))


def latin_line(rng: np.random.Generator) -> str:
    """One line of a Latin-script watermark: a name, © notice, URL, handle, stock word or date."""
    r = rng.random()
    name = _latin_name(rng)
    if r < 0.16:
        return name if rng.random() < 0.5 else f"{name} Photography"
    if r < 0.32:
        year = _year(rng)
        return _pick(
            rng, (f"© {year} {name}", f"© {name}", f"©{year} {_brand(rng)}", f"Copyright {year} {name}")
        )
    if r < 0.46:
        host = _brand(rng) + (str(int(rng.integers(1, 99))) if rng.random() < 0.15 else "")
        prefix = _pick(rng, ("www.", "", "https://", "www."))
        return f"{prefix}{host}{_pick(rng, TLDS)}"
    if r < 0.56:
        sep = _pick(rng, ("", "_", ".", ""))
        handle = name.lower().replace(" ", sep).replace("'", "")
        return f"@{handle}" if rng.random() < 0.7 else f"@{_brand(rng)}"
    if r < 0.74:
        return _pick(rng, STOCK_WORDS)
    if r < 0.84:
        return _brand(rng).capitalize() if rng.random() < 0.6 else _brand(rng)
    if r < 0.9:
        d, m = int(rng.integers(1, 29)), int(rng.integers(1, 13))
        return _pick(
            rng, (f"{d:02d}.{m:02d}.{_year(rng)}", f"{_year(rng)}-{m:02d}-{d:02d}", f"{m}/{d}/{_year(rng)}")
        )
    if r < 0.95:
        return f"Photo: {name}" if rng.random() < 0.5 else f"Image #{int(rng.integers(10000, 99999999))}"
    return " ".join(_latin_pseudo(rng).capitalize() for _ in range(int(rng.integers(1, 4))))


def _from_letters(rng: np.random.Generator, letters: str, lo: int, hi: int) -> str:
    return "".join(_pick(rng, letters) for _ in range(int(rng.integers(lo, hi + 1))))


def _devanagari_word(rng: np.random.Generator) -> str:
    return "".join(
        _pick(rng, DEVANAGARI_CONSONANTS) + _pick(rng, DEVANAGARI_SIGNS)
        for _ in range(int(rng.integers(2, 5)))
    )


def script_line(rng: np.random.Generator, script: str) -> str:
    """One line of watermark text in ``script`` (falls back to Latin for unknown scripts)."""
    if script == "latin":
        return latin_line(rng)
    r = rng.random()
    if script == "cyrillic":
        if r < 0.6:
            return _pick(rng, CYRILLIC_WORDS)
        words = [
            _from_letters(rng, CYRILLIC_LETTERS, 3, 9).capitalize() for _ in range(int(rng.integers(1, 3)))
        ]
        return ("© " if rng.random() < 0.3 else "") + " ".join(words)
    if script == "greek":
        if r < 0.6:
            return _pick(rng, GREEK_WORDS)
        words = [_from_letters(rng, GREEK_LETTERS, 3, 9).capitalize() for _ in range(int(rng.integers(1, 3)))]
        return ("© " if rng.random() < 0.3 else "") + " ".join(words)
    if script == "arabic":
        if r < 0.6:
            return _pick(rng, ARABIC_WORDS)
        return " ".join(_from_letters(rng, ARABIC_LETTERS, 3, 7) for _ in range(int(rng.integers(1, 4))))
    if script == "devanagari":
        if r < 0.6:
            return _pick(rng, DEVANAGARI_WORDS)
        return " ".join(_devanagari_word(rng) for _ in range(int(rng.integers(1, 4))))
    if script == "chinese":
        if r < 0.55:
            return _pick(rng, CHINESE_WORDS)
        text = _from_letters(rng, CHINESE_CHARS, 2, 7)
        return f"© {text}" if rng.random() < 0.2 else text
    if script == "japanese":
        if r < 0.55:
            return _pick(rng, JAPANESE_WORDS)
        text = (
            _from_letters(rng, KATAKANA, 3, 7) if rng.random() < 0.6 else _from_letters(rng, HIRAGANA, 2, 6)
        )
        return text + (_from_letters(rng, CHINESE_CHARS, 1, 2) if rng.random() < 0.4 else "")
    if script == "korean":
        if r < 0.55:
            return _pick(rng, KOREAN_WORDS)
        syllables = [
            "".join(chr(0xAC00 + int(rng.integers(0, 11172))) for _ in range(int(rng.integers(2, 4))))
            for _ in range(int(rng.integers(1, 3)))
        ]
        return " ".join(syllables)
    return latin_line(rng)


def date_stamp(rng: np.random.Generator) -> str:
    """What a camera prints in the corner: ``'19 8 15``, ``2019/08/15``, ``15.08.2019 14:32``..."""
    y, m, d = int(rng.integers(1988, 2027)), int(rng.integers(1, 13)), int(rng.integers(1, 29))
    form = int(rng.integers(4))
    if form == 0:
        text = f"'{y % 100:02d} {m:>2} {d:>2}"
    elif form == 1:
        text = f"{y}/{m:02d}/{d:02d}"
    elif form == 2:
        text = f"{d:02d}.{m:02d}.{y}"
    else:
        text = f"{y}-{m:02d}-{d:02d}"
    if rng.random() < 0.3:
        text += f" {int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}"
    return text


def handle(rng: np.random.Generator) -> str:
    """An account line of a sharing platform: ``@name123``, ``ID: 48213907``, ``No. 5531842``."""
    form = int(rng.integers(3))
    if form == 0:
        name = _latin_pseudo(rng, 2, 3) if rng.random() < 0.5 else _pick(rng, LATIN_FIRST).lower()
        return f"@{name}{'_' if rng.random() < 0.3 else ''}{int(rng.integers(0, 10_000))}"
    if form == 1:
        return f"ID: {int(rng.integers(10**6, 10**10))}"
    return f"No. {int(rng.integers(10**5, 10**8))}"


def watermark_lines(rng: np.random.Generator, script: str, n_lines: int) -> list[str]:
    """``n_lines`` lines; non-Latin marks often carry a Latin URL or © line too, as real ones do."""
    lines = [script_line(rng, script)]
    for _ in range(n_lines - 1):
        use_latin = script != "latin" and rng.random() < 0.35
        lines.append(latin_line(rng) if use_latin else script_line(rng, script))
    return lines


def style_text(rng: np.random.Generator, text: str, script: str, p_upper: float, p_spacing: float) -> str:
    """Case and tracking variations (``S A M P L E``) that scripts with letter case allow."""
    if script in ("latin", "cyrillic", "greek"):
        if rng.random() < p_upper:
            text = text.upper()
        if len(text) <= 14 and rng.random() < p_spacing:
            gap = _pick(rng, (" ", "\u2009", "  "))
            text = gap.join(text)
    return text


SCRIPT_PROBES: dict[str, str] = {
    "latin": "Photo ©",
    "cyrillic": "Фото",
    "greek": "Φωτο",
    "arabic": "صورة",
    "devanagari": "फोटो",
    "chinese": "摄影图",
    "japanese": "写真サ",
    "korean": "사진",
}
"""Short strings used to verify that a font really has glyphs for a script."""
