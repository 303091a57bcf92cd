"""The one way to parse XML (BPMN, DMN, B2MML): no DTDs, no entities, no network, bounded size.

A model file arrives through a browser; a DOCTYPE is never needed by BPMN or DMN, so any document
that has one is refused outright rather than parsed with some features turned off.
"""

from __future__ import annotations

import re

from lxml import etree

from engine.errors import DefinitionError, UnsafeXml

DEFAULT_MAX_BYTES = 5_000_000
_DECLARATIONS = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def parse_xml(data: bytes | str, *, source: str, max_bytes: int = DEFAULT_MAX_BYTES) -> etree._Element:
    """Parse ``data`` and return its root element; ``source`` names the file in every error.

    Raises UnsafeXml (code ``xml_too_large`` past ``max_bytes``, ``xml_forbidden`` for a DOCTYPE or
    ENTITY declaration) and DefinitionError(code="xml_malformed") with the line of a syntax error.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if len(raw) > max_bytes:
        raise UnsafeXml(f"the XML document is {len(raw):,} bytes; the limit is {max_bytes:,}",
                        code="xml_too_large", file=source)
    found = _DECLARATIONS.search(raw)
    if found:
        raise _forbidden(found.group(1).decode().upper(), source, line=raw.count(b"\n", 0, found.start()) + 1)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                             huge_tree=False, remove_comments=False)
    try:
        root = etree.fromstring(raw, parser)
    except etree.XMLSyntaxError as err:
        line = err.lineno or None
        raise DefinitionError(f"the XML is not well-formed: {err.msg}", code="xml_malformed",
                              file=source, line=line) from None
    docinfo = root.getroottree().docinfo
    if docinfo.internalDTD is not None or docinfo.externalDTD is not None or docinfo.doctype:
        raise _forbidden("DOCTYPE", source)  # e.g. a UTF-16 document the byte scan cannot read
    return root


def _forbidden(declaration: str, source: str, line: int | None = None) -> UnsafeXml:
    return UnsafeXml(f"XML documents must not contain a {declaration} declaration "
                     "(DTDs and entities are refused for security)", file=source, line=line)
