"""Specifications of the XML parser every model goes through: no DTDs, no entities, bounded size."""

from __future__ import annotations

import pytest

from engine.errors import DefinitionError, UnsafeXml
from engine.xmlsafe import parse_xml

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
ROOT = f'<bpmn:definitions xmlns:bpmn="{BPMN_NS}" id="d">'

HOSTILE = {
    "xxe-file-entity": f'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                       f'{ROOT}&x;</bpmn:definitions>',
    "xxe-http-entity": f'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "http://127.0.0.1:9/secret">]>'
                       f'{ROOT}&x;</bpmn:definitions>',
    "billion-laughs": '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;">'
                      '<!ENTITY c "&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;">]>'
                      f'{ROOT}&d;</bpmn:definitions>',
    "external-dtd": f'<?xml version="1.0"?><!DOCTYPE d SYSTEM "http://127.0.0.1:9/x.dtd">{ROOT}</bpmn:definitions>',
    "parameter-entity": '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>'
                        f'{ROOT}</bpmn:definitions>',
    "doctype-without-entities": f'<!DOCTYPE definitions>{ROOT}</bpmn:definitions>',
    "lowercase-doctype": f'<!doctype definitions>{ROOT}</bpmn:definitions>',
}


@pytest.mark.parametrize("xml", HOSTILE.values(), ids=HOSTILE.keys())
@pytest.mark.parametrize("as_type", [str, bytes], ids=["str", "bytes"])
def test_documents_with_a_doctype_or_entity_are_refused(xml: str, as_type: type) -> None:
    data = xml if as_type is str else xml.encode("utf-8")
    with pytest.raises(UnsafeXml) as caught:
        parse_xml(data, source="hostile.bpmn")
    assert (caught.value.code, caught.value.file) == ("xml_forbidden", "hostile.bpmn")
    assert "must not contain a" in caught.value.message


def test_a_doctype_hidden_in_utf16_is_refused_after_parsing() -> None:
    xml = f'<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE d [<!ENTITY x "y">]>{ROOT}&x;</bpmn:definitions>'
    with pytest.raises(UnsafeXml) as caught:
        parse_xml(xml.encode("utf-16"), source="sneaky.bpmn")
    assert caught.value.code == "xml_forbidden"


@pytest.mark.parametrize(("size", "limit"), [(2_000, 1_000), (5_000_001, 5_000_000)],
                         ids=["custom", "default"])
def test_oversize_documents_are_refused_before_parsing(size: int, limit: int) -> None:
    xml = ROOT + "x" * size + "</bpmn:definitions>"
    with pytest.raises(UnsafeXml) as caught:
        parse_xml(xml, source="big.bpmn", max_bytes=limit)
    assert (caught.value.code, caught.value.file) == ("xml_too_large", "big.bpmn")


MALFORMED = {
    "unclosed-element": (f"{ROOT}\n<bpmn:process id='p'>\n</bpmn:definitions>", 3),
    "garbage-on-line-4": (f"{ROOT}\n\n\n<<>\n</bpmn:definitions>", 4),
    "empty": ("", None),
}


@pytest.mark.parametrize(("xml", "line"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_xml_is_reported_with_its_line(xml: str, line: int | None) -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_xml(xml, source="broken.bpmn")
    assert not isinstance(caught.value, UnsafeXml)
    assert (caught.value.code, caught.value.file) == ("xml_malformed", "broken.bpmn")
    if line is not None:
        assert caught.value.line == line


def test_a_normal_bpmn_document_parses_with_comments_and_line_numbers() -> None:
    xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n{ROOT}\n  <!-- reviewed -->\n'
           '  <bpmn:process id="Process_release" isExecutable="true">\n'
           '    <bpmn:startEvent id="Start"/>\n  </bpmn:process>\n</bpmn:definitions>\n')
    root = parse_xml(xml.encode("utf-8"), source="release.bpmn")
    process = root.find(f"{{{BPMN_NS}}}process")
    assert process is not None and process.get("id") == "Process_release"
    assert process.sourceline == 4
    assert any(child.tag.__name__ == "Comment" for child in root if not isinstance(child.tag, str))
