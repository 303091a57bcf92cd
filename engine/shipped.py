"""Where the shipped content is: the models, forms and master-data schemas (and demo data) of the content
pack, found through package resources, so an installed wheel finds them as a source checkout does.

The pack is looked up by name (``importlib.resources``), not imported: the engine depends on no content."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

CONTENT_PACKAGE = "gmp"  # the pack `gmpflow init` deploys and whose forms and schemas are the defaults


def shipped(*parts: str) -> Path:
    """A folder of the content pack as a file-system path (models are deployed from folders)."""
    resource = files(CONTENT_PACKAGE).joinpath(*parts)
    path = Path(str(resource))
    if not path.is_dir():  # an installation from a zip archive would need extracting first
        raise FileNotFoundError(f"{CONTENT_PACKAGE} ships no folder {'/'.join(parts)} at {path}")
    return path


def processes() -> Path:
    return shipped("processes")


def forms() -> Path:
    return shipped("forms")


def masterdata() -> Path:
    return shipped("masterdata")
