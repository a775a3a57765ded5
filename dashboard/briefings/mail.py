"""Say a scheduled briefing as mail to its recipients: subject and a plain-text body in each reader's language,
attachments.

The messages are queued in the SQL outbox with the finished briefing (``storage.briefings.finish``) and sent by
``feeds.notify``, which attaches the stored HTML report (and PDF) the payload names when it sends: the one in
the reader's language (``generate`` makes one per language in use among the readers, not one per reader).
"""

from __future__ import annotations

from typing import Collection

from dashboard.briefings.render import duration
from dashboard.briefings.text import bt
from dashboard.core.i18n import district_name, kind_label, t
from dashboard.core.messages import VERSION
from dashboard.core.notifications import Message
from dashboard.storage.briefings import download_name

TOP_N = 5  # incidents the body lists; the report has them all
DISPATCH_N = 8  # departments the body lists, most tasks first


def message_key(briefing_id: int, address: str) -> str:
    """Return the idempotency key of a briefing mailed to one address."""
    return f"briefing:{briefing_id}:email:{address}"


def _stamp(iso_text: str) -> str:
    return iso_text[:16].replace("T", " ")


def _whose(data: dict, city, lang: str) -> str:
    code = (data.get("district") or {}).get("code")
    if code is None:
        return bt("title", lang)
    d = city.by_code.get(code)
    return bt("title_district", lang, district=district_name(d, lang) if d else code)


def _change(value: float | None, lang: str) -> str:
    if value is None:
        return bt("new", lang)
    return bt("no_change", lang) if value == 0 else f"{value:+.1f}%"


def subject(data: dict, city, lang: str) -> str:
    """Return the subject in ``lang``: whose briefing and its period."""
    start, end = _stamp(data["period"]["start"]), _stamp(data["period"]["end"])
    if lang == "en":
        return f"[{city.name_en} · {_whose(data, city, 'en')}] {start} to {end}"
    return f"【{city.name}·{_whose(data, city, 'zh')}】{start} 至 {end}"


def text(data: dict, headline: dict, city, lang: str, files: list[str]) -> str:
    """Return the body in ``lang``: the headline figures, the busiest district, dispatch performance, the top
    incidents, and which files are attached."""
    colon, open_, comma, close = (": ", " (", ", ", ")") if lang == "en" else ("：", "（", "，", "）")
    k = data["kpis"]

    def district(code: str | None) -> str:
        return district_name(city.by_code[code], lang) if code in city.by_code else (code or "–")

    lines = [f"{city.name_en if lang == 'en' else city.name} · {_whose(data, city, lang)}",
             f"{bt('period', lang)}{colon}{_stamp(data['period']['start'])} – {_stamp(data['period']['end'])}"
             f" · {bt('briefings', lang)} #{data['id']}", "",
             bt("kpis_district" if data.get("district") else "kpis", lang),
             f"{bt('events', lang)}{colon}{k['events']}{open_}{_change(k['events_change_pct'], lang)}{comma}"
             f"{bt('previous', lang, n=k['events_previous'])}{close}",
             f"{bt('incidents_opened', lang)}{colon}{k['incidents_opened']} · {bt('major_events', lang)}{colon}"
             f"{headline['major']}",
             f"{bt('tasks_dispatched', lang)}{colon}{k['tasks_dispatched']} · {bt('deadlines_missed', lang)}{colon}"
             f"{k['deadlines_missed']}"]
    if headline.get("busiest_district"):
        busiest = next(d for d in data["districts"] if d["code"] == headline["busiest_district"])
        lines.append(bt("mail_busiest", lang, district=district(busiest["code"]), n=busiest["total"]))
    lines += ["", bt("dispatch", lang)]
    rows = sorted(data["dispatch"], key=lambda r: -r["tasks"])[:DISPATCH_N]
    lines += [f"- {r['name_en'] if lang == 'en' else r['name']}{colon}{bt('col_tasks_n', lang)} {r['tasks']} · "
              f"{bt('col_ack', lang)} {duration(r['median_ack_s'], lang)} · "
              f"{bt('col_resolve', lang)} {duration(r['median_resolve_s'], lang)} · "
              f"{bt('col_missed', lang)} {r['deadlines_missed']}" for r in rows] or [bt("no_dispatch", lang)]
    lines += ["", bt("top_incidents", lang)]
    lines += [f"{n}. [{t('sev_%d' % i['severity'], lang)}] {i['title'] or kind_label(i['kind'], lang)} · "
              f"{district(i['district'])} · {_stamp(i['opened_at'])} · {bt('col_reports', lang)} {i['reports']} · "
              f"{t('status_' + i['status'], lang)}"
              for n, i in enumerate(data["top_incidents"][:TOP_N], 1)] or [bt("no_incidents", lang)]
    lines += ["", bt("mail_attached", lang, files=", ".join(files))]
    if data.get("note"):
        lines.append(bt("no_images", lang, why=_note(data["note"], data.get("lang") or "zh", lang)))
    return "\n".join(lines) + "\n"


def _note(note: str, made_in: str, lang: str) -> str:
    """Return why a briefing has no images in ``lang``: the missing browser in words, an error as it was."""
    return bt("no_browser", lang) if note == bt("no_browser", made_in) else note


def briefing_messages(data: dict, headline: dict, city, readers, period_end_ms: int, pdf: Collection[str],
                      tz: str) -> list[Message]:
    """Return the mail of a finished briefing to each of ``readers`` (``notifications.Reader``: a mailbox and its
    reader's language; none named, the city's), subject and body in the reader's language; the payload
    names the briefing and the files ``feeds.notify`` attaches: the HTML report in the reader's language (the
    briefing's own, or the rendition made for that language), and its PDF when one was made (``pdf``: the
    languages that have one)."""
    code = (data.get("district") or {}).get("code")
    said: dict[str, tuple[str, str, list[dict]]] = {}  # a language's subject, body and files, made once
    out = []
    for reader in readers:
        address, lang = reader.address, reader_lang(reader, city)
        if lang not in said:
            parts = ["html", "pdf"] if lang in pdf else ["html"]
            attach = [{"part": p, "filename": download_name(data["id"], period_end_ms, p, tz), "lang": lang}
                      for p in parts]
            files = [a["filename"] for a in attach]
            said[lang] = (subject(data, city, lang)[:300], text(data, headline, city, lang, files), attach)
        key = message_key(data["id"], address)
        title, body, attach = said[lang]
        payload = {"v": VERSION, "key": key, "type": "briefing", "at": data["generated_at"], "lang": lang,
                   "briefing": {"id": data["id"], "slot": data["slot"], "district": code,
                                "period": data["period"], "headline": headline},
                   "attach": attach}
        out.append(Message(key, "email", address, title, body, payload))
    return out


def reader_lang(reader, city) -> str:
    """Return the language ``reader`` reads the briefing in: their own, else the city's."""
    return reader.lang or city.language


def reader_langs(readers, city) -> set[str]:
    """Return the languages ``readers`` read the briefing in: one report is made for each."""
    return {reader_lang(r, city) for r in readers}
