"""Say what one reader may see: the whole city, one department's dispatch (a liaison), one district (a district
centre, SPEC section 13), no dispatch at all (a kiosk wall).

One value, made once from the signed-in user (or the wall's kiosk token, or the socket's signed ticket), read by
the REST API, the Dash callbacks and the websocket gateway alike, so the three cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping


@dataclass(frozen=True)
class Scope:
    """What a reader is limited to; the default (every field None / False) is the whole city.

    ``department``: a liaison's; they read only the incidents it holds a task of, its tasks and units ("" for a
    liaison without one: nothing). ``district``: a district centre's code; events, incidents, tasks, alerts,
    units, major incidents and counts of that district only. ``wall``: a kiosk wall, which reads no dispatch.
    Hashable: the gateway encodes each scope's frames once per tick.
    """

    department: str | None = None
    district: str | None = None
    wall: bool = False

    @property
    def city(self) -> bool:
        """Tell whether the reader sees every district."""
        return self.district is None

    def sees(self, district: str | None) -> bool:
        """Tell whether the reader may see something of ``district`` (None: of no district, the city's own)."""
        return self.district is None or district == self.district

    def districts(self) -> tuple[str, ...]:
        """Return the districts a district filter takes (empty: no filter)."""
        return () if self.district is None else (self.district,)

    def only(self, items: Iterable[Mapping[str, Any]], key: str = "district") -> list:
        """Return the ``items`` whose ``key`` names a district the reader sees."""
        if self.district is None:
            return list(items)
        return [i for i in items if i.get(key) == self.district]

    def units(self, units: Iterable[Mapping[str, Any]]) -> list:
        """Return the units (``messages.UnitView``) as the reader reads them (GET /api/units): a district's, a
        liaison's department's, a wall's without the tasks they are on."""
        out = self.only(units)
        if self.wall:
            return [{**u, "task_id": None} for u in out]
        if self.department is not None:
            return [u for u in out if u.get("department") == self.department]
        return out

    def majors(self, majors: Iterable[Mapping[str, Any]]) -> list:
        """Return the active major incidents (``messages.MajorView``) of the districts the reader sees."""
        return [m for m in majors if self.sees((m.get("incident") or {}).get("district"))]

    def reads_roster(self, district: str | None) -> bool:
        """Tell whether the reader reads the duty roster of a department of ``district`` (None: a city department,
        whose people answer every district's escalations): a city department's everyone, a district's department's
        the city centre and that district's centre, never another district's."""
        return district is None or self.sees(district)

    def sets_roster(self, district: str | None) -> bool:
        """Tell whether the reader's centre overrides the roster of a department of ``district`` (the role aside):
        the city centre every roster, a district centre its own district's departments' only (a city department's
        roster is the city's: the city centre changes it)."""
        return self.district is None or district == self.district

    def ticket(self) -> dict:
        """Return the scope as a socket ticket carries it (signed, so the gateway need not ask the database)."""
        out: dict = {}
        if self.department is not None:
            out["d"] = self.department
        if self.district is not None:
            out["r"] = self.district
        return out


CITY = Scope()
WALL = Scope(wall=True)


def of_user(user) -> Scope:
    """Return the scope of a signed-in ``user`` (None: the city, as for a program with no user)."""
    if user is None:
        return CITY
    department = (user.department or "") if user.role == "liaison" else None
    return Scope(department=department, district=getattr(user, "district", None) or None)


def of_ticket(subject: Mapping[str, Any]) -> Scope:
    """Return the scope a socket ticket's subject names: a kiosk wall's (``k``, its district ``r`` if any), a
    liaison's department (``d``), a district centre's district (``r``)."""
    district = subject.get("r") if isinstance(subject.get("r"), str) else None
    if "k" in subject:
        return Scope(district=district, wall=True)
    department = subject.get("d") if isinstance(subject.get("d"), str) else None
    return Scope(department=department, district=district)


def readers_of(district: str, centre: str | None) -> tuple[str, ...]:
    """Return the district centres that may read an incident of ``district`` run by ``centre`` (None: the city's)."""
    return (district,) if centre in (None, district) else (district, centre)
