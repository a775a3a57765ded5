"""Load a city pack: the district registry, boundaries and departments of one city."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import yaml

from dashboard.routing import Rules, load_rules

PACKS_DIR = Path(__file__).parent / "cities"


@dataclass(frozen=True)
class Street:
    """A sub-district (街道) of a district."""

    name: str
    name_en: str = ""
    code: str = ""


@dataclass(frozen=True)
class District:
    """One district of the registry."""

    code: str
    slug: str
    name: str
    name_en: str
    population: int
    lat: float
    lon: float
    streets: tuple[Street, ...] = ()

    def as_ref(self) -> dict:
        """Return the fields that identify the district in API answers."""
        return {"code": self.code, "slug": self.slug, "name": self.name, "name_en": self.name_en}


@dataclass(frozen=True)
class City:
    """A city pack loaded from its folder."""

    slug: str
    name: str
    name_en: str
    timezone: str
    lat: float
    lon: float
    districts: tuple[District, ...]
    path: Path = field(compare=False)

    @cached_property
    def aliases(self) -> dict[str, str]:
        """Map every accepted spelling of a district (code, slug, names) to its code."""
        out: dict[str, str] = {}
        for d in self.districts:
            for alias in (d.code, d.slug, d.slug.lower(), d.name, d.name.removesuffix("区"), d.name_en, d.name_en.lower()):
                if alias:
                    out[alias] = d.code
        return out

    @cached_property
    def by_code(self) -> dict[str, District]:
        """Map each district code to its district."""
        return {d.code: d for d in self.districts}

    def resolve(self, code_or_slug: str) -> District | None:
        """Return the district named by a code, slug or name, or None."""
        code = self.aliases.get(code_or_slug) or self.aliases.get(code_or_slug.lower())
        return self.by_code.get(code) if code else None

    @cached_property
    def geojson(self) -> dict:
        """Return the district boundaries, one feature per district with ``id`` = code."""
        return json.loads((self.path / "boundaries.geojson").read_text(encoding="utf-8"))

    @cached_property
    def departments(self) -> list[dict]:
        """Return the departments of the city pack (empty when the pack has none)."""
        path = self.path / "departments.yaml"
        if not path.exists():
            return []
        return yaml.safe_load(path.read_text(encoding="utf-8")).get("departments", [])

    @cached_property
    def rules(self) -> Rules | None:
        """Return the pack's validated routing rules, or None when it has no rules.yaml; a broken file raises."""
        path = self.path / "rules.yaml"
        return load_rules(path, self.departments, self.aliases, self.timezone) if path.exists() else None


def load_city(name_or_path: str) -> City:
    """Load a city pack by its name under ``dashboard/cities`` or by a folder path."""
    path = Path(name_or_path)
    if not path.is_dir():
        path = PACKS_DIR / name_or_path
    manifest = path / "city.yaml"
    if not manifest.exists():
        raise ValueError(f"no city pack at {path} (expected {manifest.name})")
    data = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    districts = tuple(
        District(
            code=str(d["code"]),
            slug=d["slug"],
            name=d["name"],
            name_en=d["name_en"],
            population=int(d["population"]),
            lat=float(d["center"]["lat"]),
            lon=float(d["center"]["lon"]),
            streets=tuple(Street(**s) for s in d.get("streets", [])),
        )
        for d in data["districts"]
    )
    return City(
        slug=data["slug"],
        name=data["name"],
        name_en=data["name_en"],
        timezone=data.get("timezone", "Asia/Shanghai"),
        lat=float(data["center"]["lat"]),
        lon=float(data["center"]["lon"]),
        districts=districts,
        path=path,
    )
