"""The one currency of a deployment's money, and the check of an event's optional ``currency``.

Why: MRR and purchases are summed as plain amounts (cents); amounts in different currencies
summed give a number that means nothing (QA9 M1: 40 EUR + 5,000 JPY + 49.99 USD read "MRR
5089.99"). churnwatch converts nothing: every amount must be in one currency, converted upstream.
``CHURNWATCH_CURRENCY`` names it (an ISO 4217 code); an event may say its currency, and one that
says another is refused (docs/REVENUE.md, "One currency"). Unset (the default), the currency
stays unnamed and a stated ``currency`` is ignored, as any other field, as before the setting
existed (review 16 M-2: a free-text "€" from an existing producer must not start losing events
on upgrade). Pure: the worker's decoder
(models.intake) and the history reader (streams.offline.history) call the same function.
"""

from __future__ import annotations

from models.subscription import a_type

__all__ = ["currency_code", "currency_refusal"]


def currency_code(value: str) -> str:
    """A configured currency -> its upper-case ISO 4217 code ("" stays ""); ValueError otherwise.

    >>> currency_code(" usd "), currency_code("")
    ('USD', '')
    >>> currency_code("dollars")
    Traceback (most recent call last):
    ...
    ValueError: currency 'dollars' is not a 3-letter ISO 4217 code (USD, EUR, JPY, ...)
    """
    code = value.strip().upper()
    if code and not (len(code) == 3 and code.isascii() and code.isalpha()):
        raise ValueError(f"currency {value!r} is not a 3-letter ISO 4217 code (USD, EUR, JPY, ...)")
    return code


def currency_refusal(value: object, configured: str) -> str:
    """Why an event's ``currency`` field is refused ("" when it is not): when a deployment names
    one (``configured``, upper case, from :func:`currency_code`), it must be that code, compared
    case-insensitively. Missing (None) or empty is no statement: "". Unset: never refused.

    >>> currency_refusal("usd", "USD"), currency_refusal(None, "USD"), currency_refusal("EUR", ""), currency_refusal("€", "")
    ('', '', '', '')
    >>> currency_refusal("EUR", "USD")
    'currency EUR is not the deployment currency USD (CHURNWATCH_CURRENCY): convert amounts to USD before sending'
    >>> currency_refusal(978, "USD")
    'currency is an int, expected a 3-letter ISO 4217 code'
    """
    if not configured or value is None or value == "":
        return ""
    if type(value) is not str:
        return f"currency is {a_type(value)}, expected a 3-letter ISO 4217 code"
    code = value.strip().upper()
    if not (len(code) == 3 and code.isascii() and code.isalpha()):
        return f"currency {value[:20]!r} is not a 3-letter ISO 4217 code"
    if code != configured:
        return (f"currency {code} is not the deployment currency {configured} (CHURNWATCH_CURRENCY): "
                f"convert amounts to {configured} before sending")
    return ""
