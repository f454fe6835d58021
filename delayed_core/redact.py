"""Hiding passwords before anything is printed or logged.

A broker URL of the default plugin (Redis) carries its password in one of two places:
``redis://user:PASSWORD@host`` or the query string ``redis://host/0?password=PASSWORD``. Every output
(log lines, error messages, ``delayed config``, ``info``, ``dead`` ...) goes through :func:`redact_url`
or :func:`redact`, so there is one rule to audit.

Both functions work on text, not on a parsed URL: a URL that does not parse (``redis://:s3cret@host:
notaport/0``) must be hidden as well as a valid one. When in doubt they hide too much, never too little.
"""

from __future__ import annotations

import re

MASK = "***"

#: ``password=...`` (or ``sentinel_password=...``) in a query string, up to the next parameter.
_QUERY_PASSWORD = re.compile(r"([?&;]\w*password=)[^&;#\s'\"]*", re.IGNORECASE)
#: A URL inside free text: a scheme, ``://`` and everything up to a blank or a quote.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")
#: ``user:password@host`` with no scheme (``--broker user:pw@host:6379``), in free text.
_BARE_USERINFO = re.compile(r"(?<![\w/:])([\w.%\-]*:)[^\s'\"<>@/]+@(?=[\w\[])")


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***``: ``redis://user:***@host:6379/0?password=***`` (a URL
    of the default plugin, Redis).

    The user name stays visible (it helps to debug an ACL). A password may hold ``@``, ``/`` or ``?``
    unencoded, so everything between the first ``:`` of the user part and the *last* ``@`` is hidden.
    A URL with no scheme (``user:pass@host``) is treated the same way.
    """
    if "@" in url:
        scheme_end = url.find("://")
        start = scheme_end + 3 if scheme_end >= 0 else 0
        at = url.rfind("@")
        colon = url.find(":", start, at)
        if colon >= 0 and at > colon + 1:
            url = f"{url[:colon + 1]}{MASK}{url[at:]}"
    if "password=" in url.lower():
        url = _QUERY_PASSWORD.sub(lambda match: match.group(1) + MASK, url)
    return url


def redact(text: str) -> str:
    """``text`` (a log line, an error message) with the password of every URL in it hidden."""
    if "@" not in text and "password=" not in text.lower():
        return text  # the common case, and the cheap one: no credentials anywhere
    text = _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)
    text = _BARE_USERINFO.sub(lambda match: match.group(1) + MASK + "@", text)
    return _QUERY_PASSWORD.sub(lambda match: match.group(1) + MASK, text)
