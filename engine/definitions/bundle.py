"""A process bundle: the files of one deployable process, read from paths or from the store."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import DefinitionError

BPMN_SUFFIXES = (".bpmn", ".bpmn20.xml")
DMN_SUFFIXES = (".dmn",)
FORM_SUFFIXES = (".form", ".form.json")
MAX_FILE_BYTES = 5_000_000


def kind_of(name: str) -> str | None:
    lower = name.lower()
    for kind, suffixes in (("bpmn", BPMN_SUFFIXES), ("dmn", DMN_SUFFIXES), ("form", FORM_SUFFIXES)):
        if lower.endswith(suffixes):
            return kind
    return None


@dataclass
class Bundle:
    """File name → text. The content hash covers every file, forms included."""

    files: dict[str, str] = field(default_factory=dict)

    def of_kind(self, kind: str) -> dict[str, str]:
        return {name: text for name, text in sorted(self.files.items()) if kind_of(name) == kind}

    @property
    def content_hash(self) -> str:
        digest = hashlib.sha256()
        for name, text in sorted(self.files.items()):
            digest.update(name.encode() + b"\0" + hashlib.sha256(text.encode()).digest())
        return digest.hexdigest()

    def forms(self) -> dict[str, dict]:
        """Form id → form-js definition; the id is the form's ``id`` or else the file's stem."""
        result: dict[str, dict] = {}
        for name, text in self.of_kind("form").items():
            try:
                form = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DefinitionError(f"The form is not valid JSON: {exc.msg}.", file=name, line=exc.lineno,
                                      code="form_malformed") from exc
            if not isinstance(form, dict) or not isinstance(form.get("components"), list):
                raise DefinitionError("A form must be a form-js JSON object with a 'components' list.",
                                      file=name, code="form_malformed")
            stem = Path(name).name.split(".")[0]
            result[str(form.get("id") or stem)] = form
        return result


def read_bundle(paths: list[str | Path]) -> Bundle:
    """Read ``.bpmn``/``.dmn``/``.form`` files, or the files of folders, into one bundle."""
    bundle = Bundle()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            candidates = sorted(p for p in path.rglob("*") if p.is_file() and kind_of(p.name))
            if not candidates:
                raise DefinitionError("The folder holds no .bpmn, .dmn or .form file.", file=str(path),
                                      code="bundle_empty")
        elif path.is_file():
            if not kind_of(path.name):
                raise DefinitionError("Only .bpmn, .dmn and .form files can be deployed.", file=str(path),
                                      code="bundle_unknown_file")
            candidates = [path]
        else:
            raise DefinitionError("No such file or folder.", file=str(path), code="bundle_not_found")
        for file in candidates:
            if file.stat().st_size > MAX_FILE_BYTES:
                raise DefinitionError(f"The file is larger than {MAX_FILE_BYTES} bytes.", file=file.name,
                                      code="xml_too_large")
            if file.name in bundle.files:
                raise DefinitionError("Two files of the bundle have the same name.", file=file.name,
                                      code="bundle_duplicate_file")
            try:
                bundle.files[file.name] = file.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise DefinitionError(f"The file is not UTF-8 text (byte {exc.start}); save it as UTF-8.",
                                      file=file.name, code="file_not_utf8") from None
    return bundle


def add_referenced_forms(bundle: Bundle, form_ids: set[str], folders: Sequence[Path]) -> None:
    """Copy forms the models reference but the bundle lacks from the forms search path (``folders``, in
    order: ``Config.forms_folders()``) into the bundle."""
    missing = form_ids - set(bundle.forms())
    for folder in folders:
        for form_id in sorted(missing):
            for suffix in FORM_SUFFIXES:
                candidate = folder / f"{form_id}{suffix}"
                if candidate.is_file() and candidate.name not in bundle.files:
                    bundle.files[candidate.name] = candidate.read_text(encoding="utf-8")
                    break
        missing = form_ids - set(bundle.forms())
