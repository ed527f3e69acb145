"""GSM-7 character set and SMS segment arithmetic.

One character outside GSM 03.38 switches the whole message to UCS-2, which
cuts a segment from 160 to 70 characters (twilio.com/docs/glossary/
what-sms-character-limit), so every SMS template must stay inside it.
"""

# GSM 03.38 basic character set (the 7-bit default alphabet).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each costs two septets (an escape plus the character).
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")

SINGLE_SEGMENT = 160
MULTI_SEGMENT = 153
MAX_SMS_CHARS = 2 * MULTI_SEGMENT  # 306: our ceiling of two segments


def is_gsm7(text: str) -> bool:
    """Return True when every character encodes in GSM-7 (basic or extended)."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENDED for ch in text)


def non_gsm7_chars(text: str) -> list[str]:
    """Return the characters that would force UCS-2, in order of appearance."""
    return [ch for ch in text if ch not in GSM7_BASIC and ch not in GSM7_EXTENDED]


def septets(text: str) -> int:
    """Count GSM-7 septets: extension characters take two."""
    return sum(2 if ch in GSM7_EXTENDED else 1 for ch in text)


def segment_count(text: str) -> int:
    """Return how many SMS segments Twilio bills for this text."""
    if is_gsm7(text):
        length, single, multi = septets(text), SINGLE_SEGMENT, MULTI_SEGMENT
    else:
        length, single, multi = len(text.encode("utf-16-le")) // 2, 70, 67
    if length <= single:
        return 1
    return -(-length // multi)
