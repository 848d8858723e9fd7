"""What the volume viewer and the mask pictures share: the colours of a prediction against its ground truth
(Okabe and Ito's colour-blind-safe palette: true positives bluish green, false positives orange, false negatives
reddish purple; the same in the pictures, the viewer and the pages' legends, whose CSS the site writes from
here), and the viewer's script format: the figures and score stages write it, the site re-reads it.

A viewer volume travels as a small ``.js`` file that registers a gzipped NIfTI, base64-encoded, under
``window.viewerVolumes[key]`` (NiiVue cannot fetch a file under ``file://``). Such a file is data, and the site
never copies one as code: ``payload_of`` accepts exactly what ``as_script`` writes and nothing else, and the
site writes a fresh script from the payload.
"""

import base64
import re

COLOURS = {"tp": (0, 158, 115), "fp": (230, 159, 0), "fn": (204, 121, 167)}

_SCRIPT = re.compile(r'\(window\.viewerVolumes = window\.viewerVolumes \|\| \{\}\)\["([a-z0-9_-]+)"\] = '
                     r'"([A-Za-z0-9+/]*={0,2})";\n')  # fmt: skip


def as_script(key: str, payload: bytes) -> str:
    """A .js file that registers the volume under ``window.viewerVolumes[key]`` (``key`` is an id we made)."""
    return f'(window.viewerVolumes = window.viewerVolumes || {{}})["{key}"] = "{base64.b64encode(payload).decode()}";\n'


def payload_of(text: str, key: str) -> bytes | None:
    """The gzipped volume of a script ``as_script`` wrote for ``key``, or None when ``text`` is anything else
    (one more statement, another key, a payload that is not gzip): a stored script is data to re-serialise,
    never code to copy."""
    match = _SCRIPT.fullmatch(text)
    if match is None or match.group(1) != key:
        return None
    try:
        payload = base64.b64decode(match.group(2), validate=True)
    except ValueError:
        return None
    return payload if payload[:2] == b"\x1f\x8b" else None
