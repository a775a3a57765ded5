"""Model one Shenzhen day for the simulator: hourly rates, the rainstorm, roads, values and titles."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo


def bump(h: float, centre: float, width: float) -> float:
    """Return a Gaussian bump over the hour of day, wrapping around midnight."""
    d = abs(h - centre) % 24
    return math.exp(-0.5 * (min(d, 24 - d) / width) ** 2)


def daytime(h: float) -> float:
    """Return ~1 between 07:00 and 22:00 and ~0 at night, with smooth edges."""
    return 1 / (1 + math.exp(-2 * (h - 6.5))) / (1 + math.exp(1.5 * (h - 22.5)))


PROFILES = {
    "rush": lambda h: 0.12 + 0.5 * daytime(h) + 1.6 * bump(h, 8.5, 0.75) + 1.7 * bump(h, 18.5, 0.85),
    "day": lambda h: 0.25 + daytime(h),
    "flat": lambda h: 1.0,
    "evening": lambda h: 0.1 + 0.5 * daytime(h) + 0.4 * bump(h, 12.5, 1.2) + 1.6 * bump(h, 20.5, 1.6),
    "night": lambda h: 0.5 + 0.3 * daytime(h) + 1.4 * bump(h, 0.5, 2.2),
}
_MEANS = {name: sum(f(i / 20) for i in range(480)) / 480 for name, f in PROFILES.items()}


@dataclass(frozen=True)
class Kind:
    """One kind of event: its domain, its share of the average rate and its daily profile."""

    domain: str
    kind: str
    share: float  # storm kinds ("rain", "wet" profiles): share of the rate at the storm's peak, extra
    profile: str


# The day-shaped shares sum to 1, so `rate` is the average over a day without rain.
KINDS = (
    Kind("traffic", "speed", 0.24, "rush"),
    Kind("traffic", "congestion", 0.22, "rush"),
    Kind("traffic", "accident", 0.004, "rush"),
    Kind("traffic", "road_closure", 0.003, "day"),
    Kind("traffic", "signal_fault", 0.003, "day"),
    Kind("environment", "aqi", 0.09, "flat"),
    Kind("environment", "pm25", 0.09, "flat"),
    Kind("environment", "noise", 0.08, "day"),
    Kind("environment", "water_level", 0.015, "flat"),
    Kind("environment", "pollution_discharge", 0.0005, "night"),
    Kind("security", "crowd_density", 0.22, "evening"),
    Kind("security", "theft", 0.008, "day"),
    Kind("security", "fight", 0.003, "night"),
    Kind("security", "intrusion", 0.004, "night"),
    Kind("security", "suspicious_vehicle", 0.0145, "day"),
    Kind("incident", "public_complaint", 0.0026, "day"),
    Kind("incident", "medical", 0.0013, "day"),
    Kind("incident", "fire", 0.0006, "day"),
    Kind("incident", "gas_leak", 0.00048, "day"),
    Kind("incident", "building_collapse", 0.00002, "day"),
    Kind("environment", "rainfall", 0.03, "rain"),
    Kind("environment", "water_level", 0.01, "wet"),
    Kind("incident", "flood", 0.002, "wet"),
)
_DAY_SHARE = sum(k.share for k in KINDS if k.profile in PROFILES)  # 1, kept exact if shares are edited


@dataclass(frozen=True)
class Storm:
    """The afternoon rainstorm of one simulated day."""

    start: datetime
    end: datetime
    peak_mm: float  # mm/h at the height of the storm
    factor: dict  # district code -> how hard it rains there (0.6–1.4)

    def rain(self, t: datetime) -> float:
        """Return the rain intensity at t, 0 (dry) to 1 (peak)."""
        if not self.start <= t < self.end:
            return 0.0
        return math.sin(math.pi * (t - self.start) / (self.end - self.start)) ** 1.5

    def wet(self, t: datetime) -> float:
        """Return how high the rivers and the streets' water are at t, 0 to 1 (lags the rain)."""
        span = self.end - self.start
        if not self.start <= t < self.end + timedelta(hours=3):
            return 0.0
        peak = self.start + span * 0.55 + timedelta(minutes=40)
        return math.exp(-0.5 * ((t - peak) / (span * 0.35 + timedelta(minutes=20))) ** 2)


def storm_for(day: date, seed: int, tz: tzinfo, codes) -> Storm:
    """Draw the day's rainstorm: it starts between 13:00 and 16:00 and lasts 1.5–2.5 h."""
    rng = random.Random(f"{seed}:storm:{day.isoformat()}")
    start = datetime.combine(day, time(13), tz) + timedelta(minutes=rng.randrange(0, 180))
    end = start + timedelta(minutes=rng.randrange(90, 150))
    return Storm(start, end, rng.uniform(35, 70), {c: rng.uniform(0.6, 1.4) for c in codes})


def kind_rates(h: float, rain: float, wet: float) -> list[tuple[Kind, float]]:
    """Return each kind's rate at hour h as a multiple of the simulator's average rate."""
    out = []
    for k in KINDS:
        if k.profile == "rain":
            r = k.share * rain
        elif k.profile == "wet":
            r = k.share * wet
        else:
            r = k.share / _DAY_SHARE * PROFILES[k.profile](h) / _MEANS[k.profile]
            if k.kind in ("accident", "signal_fault"):
                r *= 1 + 1.5 * rain
        out.append((k, r))
    return out


def day_rate(h: float, rain: float = 0.0, wet: float = 0.0) -> float:
    """Return the total rate at hour h as a multiple of the average rate."""
    return sum(r for _, r in kind_rates(h, rain, wet))


# Real roads by district, for the traffic titles.
ROADS = {
    "440303": ["深南东路", "东门路", "宝安南路", "人民南路", "春风路", "泥岗路", "布心路", "罗沙路", "爱国路", "沿河北路"],
    "440304": ["深南大道", "北环大道", "滨河大道", "红荔路", "福华路", "彩田路", "皇岗路", "新洲路", "香蜜湖路", "华强北路"],
    "440305": ["深南大道", "滨海大道", "南海大道", "沙河西路", "北环大道", "科苑大道", "后海大道", "月亮湾大道", "留仙大道", "侨香路"],
    "440306": ["宝安大道", "广深公路", "新湖路", "创业路", "前进路", "航城大道", "福永大道", "松福大道", "广深高速", "沿江高速"],
    "440307": ["龙岗大道", "深惠路", "布龙路", "水官高速", "清平高速", "吉华路", "坂雪岗大道", "龙翔大道", "丹平快速", "机荷高速"],
    "440308": ["深盐路", "盐田路", "沙头角路", "北山道", "盐梅路", "梧桐路", "盐排高速", "盐坝高速"],
    "440309": ["梅观高速", "龙华大道", "民治大道", "人民路", "梅龙大道", "布龙路", "东环路", "观澜大道", "南坪快速", "机荷高速"],
    "440310": ["坪山大道", "深汕路", "丹梓大道", "金碧路", "比亚迪路", "龙坪路", "外环高速"],
    "440311": ["光明大道", "华夏路", "光侨路", "观光路", "公常路", "松白路", "龙大高速", "南光高速"],
}
# How busy each district's roads are, relative to the city.
TRAFFIC_LOAD = {"440303": 1.1, "440304": 1.15, "440305": 1.1, "440306": 1.0, "440307": 0.95,
                "440308": 0.8, "440309": 1.0, "440310": 0.75, "440311": 0.8}
# River gauges by district: (river, usual level m, warning level m, street of the gauge).
RIVERS = {
    "440303": [("深圳河", 1.2, 3.0, "南湖街道"), ("布吉河", 0.8, 2.4, "东晓街道")],
    "440304": [("福田河", 0.6, 2.0, "华富街道"), ("新洲河", 0.7, 2.2, "沙头街道"), ("皇岗河", 0.5, 1.8, "福田街道")],
    "440305": [("大沙河", 0.9, 2.6, "粤海街道"), ("双界河", 0.6, 2.0, "南头街道")],
    "440306": [("茅洲河", 1.5, 3.4, "沙井街道"), ("西乡河", 0.8, 2.3, "西乡街道")],
    "440307": [("龙岗河", 1.1, 3.0, "龙岗街道"), ("丁山河", 0.7, 2.1, "宝龙街道")],
    "440308": [("盐田河", 0.5, 1.7, "盐田街道"), ("沙头角河", 0.6, 1.9, "沙头角街道")],
    "440309": [("观澜河", 1.0, 2.8, "观澜街道")],
    "440310": [("坪山河", 1.0, 2.7, "坪山街道")],
    "440311": [("茅洲河", 1.3, 3.2, "光明街道"), ("鹅颈水", 0.6, 1.9, "凤凰街道")],
}
_RIVER = [("河道", 1.0, 2.8, None)]  # for a district of another city
AQI_BASE = {"440303": 36, "440304": 38, "440305": 37, "440306": 46, "440307": 42,
            "440308": 30, "440309": 42, "440310": 38, "440311": 47}
# Crowd hot spots: (district, street, place, lat, lon).
HOTSPOTS = [
    ("440304", "华强北街道", "华强北步行街", 22.5445, 114.0855),
    ("440303", "东门街道", "东门步行街", 22.5465, 114.1195),
    ("440305", "粤海街道", "海岸城", 22.5170, 113.9360),
    ("440305", "沙河街道", "世界之窗", 22.5365, 113.9730),
    ("440305", "沙河街道", "欢乐海岸", 22.5260, 113.9880),
    ("440303", "南湖街道", "罗湖口岸", 22.5320, 114.1130),
    ("440304", "福保街道", "福田口岸", 22.5160, 114.0700),
    ("440308", "梅沙街道", "大梅沙海滨公园", 22.5940, 114.3050),
    ("440306", "新安街道", "宝安中心区", 22.5560, 113.8830),
    ("440309", "民治街道", "深圳北站", 22.6095, 114.0290),
    ("440307", "龙城街道", "大运中心", 22.6970, 114.2140),
]
PLACES = ["居民楼", "城中村", "商业综合体", "工业园", "地铁站出口", "停车场", "餐饮店", "学校周边", "公园"]
COMPLAINTS = ["夜间施工噪音扰民", "占道经营", "生活垃圾未及时清运", "餐饮油烟扰民", "违章停车堵塞消防通道",
              "路灯不亮", "共享单车乱停放", "井盖缺失"]
FLOOD_SPOTS = ["下穿通道", "立交桥底", "地下车库", "城中村巷道", "地铁站出入口", "低洼路段"]


@dataclass(frozen=True)
class Spot:
    """Where and when an event happens, handed to a kind's builder."""

    code: str
    short: str  # district name without 区, e.g. 福田
    street: str
    hour: float
    rain: float
    wet: float
    storm: Storm
    place: str | None = None  # a named hot spot (华强北步行街), when the event happens at one


def _sev(rng: random.Random, weights: tuple[float, float, float, float]) -> int:
    return rng.choices((1, 2, 3, 4), weights)[0]


def congestion_index(rng: random.Random, s: Spot) -> float:
    """Return a congestion index 1.0–10.0 for the district and hour."""
    h = s.hour
    base = 1.5 + 1.2 * daytime(h) + 4.6 * bump(h, 8.5, 0.8) + 5.0 * bump(h, 18.5, 0.9)
    return round(min(10.0, max(1.0, base * TRAFFIC_LOAD.get(s.code, 1.0) + 2.0 * s.rain + rng.gauss(0, 0.6))), 1)


def build(kind: str, rng: random.Random, s: Spot) -> dict:
    """Return the kind-specific fields of one event: value, unit, severity, title, source (maybe detail, street)."""
    road = rng.choice(ROADS.get(s.code) or ["主干道"])
    seg = f"{road}{s.short}段"
    cam = f"cam-{s.code}-{rng.randrange(1, 4000):04d}"
    if kind == "congestion":
        v = congestion_index(rng, s)
        return {"value": v, "unit": "index", "severity": 2 if v >= 6 else 1, "source": f"tpi-{s.code}",
                "title": f"{seg}{'严重拥堵' if v >= 8 else '拥堵' if v >= 6 else '缓行' if v >= 4 else '畅通'}",
                "detail": f"交通指数 {v}"}
    if kind == "speed":
        v = round(max(5.0, 62 - 5.2 * congestion_index(rng, s) + rng.gauss(0, 3)), 1)
        return {"value": v, "unit": "km/h", "severity": 1, "source": f"loop-{s.code}-{rng.randrange(1, 600):03d}",
                "title": f"{seg}平均车速 {v:.0f} km/h"}
    if kind == "accident":
        v = congestion_index(rng, s)
        what = rng.choice(["两车追尾", "多车碰撞", "电动车与小汽车碰撞", "货车侧翻", "车辆剐蹭"])
        return {"value": v, "unit": "index", "severity": _sev(rng, (0, 80, 17, 3)), "source": rng.choice(["122", cam]),
                "title": f"{seg}{what}", "detail": f"占用 {rng.randint(1, 3)} 条车道，现场交通指数 {v}"}
    if kind == "road_closure":
        why = "积水临时封闭" if s.rain > 0.3 else rng.choice(["道路施工临时封闭", "管道抢修半幅封闭", "大型活动交通管制"])
        return {"severity": 2, "source": "transport", "title": f"{seg}{why}"}
    if kind == "signal_fault":
        return {"severity": 2, "source": cam, "title": f"{seg}路口信号灯故障"}
    if kind in ("aqi", "pm25"):
        h = s.hour
        aqi = AQI_BASE.get(s.code, 40) * (1 + 0.25 * bump(h, 8.5, 1.5) + 0.35 * bump(h, 15, 2) + 0.2 * bump(h, 20.5, 2))
        aqi = max(8.0, aqi * (1 - 0.5 * max(s.rain, s.wet)) + rng.gauss(0, 4))
        station = f"aq-{s.code}-{rng.randrange(1, 6):02d}"
        if kind == "pm25":
            v = round(max(2.0, aqi * 0.45 + rng.gauss(0, 2)), 1)
            return {"value": v, "unit": "μg/m³", "severity": 1 if v <= 75 else 2, "source": station,
                    "title": f"{s.short}区PM2.5浓度 {v:.0f} μg/m³"}
        level = "优" if aqi <= 50 else "良" if aqi <= 100 else "轻度污染"
        return {"value": round(aqi), "unit": "AQI", "severity": 1 if aqi <= 100 else 2, "source": station,
                "title": f"{s.short}区空气质量指数 {aqi:.0f}（{level}）"}
    if kind == "noise":
        v = round(47 + 15 * daytime(s.hour) + 4 * bump(s.hour, 8.5, 1) + rng.gauss(0, 4), 1)
        limit = 70 if 6 <= s.hour < 22 else 55
        return {"value": v, "unit": "dB(A)", "severity": 2 if v > limit else 1,
                "source": f"noise-{s.code}-{rng.randrange(1, 20):02d}", "title": f"{s.short}区{s.street}噪声 {v:.0f} dB(A)"}
    if kind == "water_level":
        gauges = RIVERS.get(s.code) or _RIVER
        n = rng.randrange(len(gauges))
        river, usual, warn, street = gauges[n]
        rise = (warn - usual + 0.5) * s.wet * s.storm.factor[s.code]
        v = round(max(0.1, usual + rise + rng.gauss(0, 0.04)), 2)
        over = v - warn
        title = f"{river}（{s.short}段）水位 {v:.2f} m" + (f"，超警戒 {over:.2f} m" if over >= 0 else "")
        return {"value": v, "unit": "m", "severity": 3 if over >= 0 else 2 if over > -0.3 else 1,
                "source": f"wl-{s.code}-{n + 1:02d}", "title": title, "street": street or s.street}
    if kind == "rainfall":
        v = round(s.storm.peak_mm * s.rain * s.storm.factor[s.code] * rng.uniform(0.7, 1.1), 1)
        return {"value": v, "unit": "mm/h", "severity": 2 if v >= 30 else 1,
                "source": f"rg-{s.code}-{rng.randrange(1, 30):02d}", "title": f"{s.short}区{s.street}小时雨量 {v} mm"}
    if kind == "pollution_discharge":
        return {"severity": 2, "source": "12345", "title": f"{s.street}工业园疑似偷排污水"}
    if kind == "crowd_density":
        peak = 0.6 + 2.2 * bump(s.hour, 20.5, 1.8) + 0.8 * bump(s.hour, 12.5, 1.2)
        v = round(max(0.1, peak * rng.triangular(0.4, 1.3, 0.9)), 2)
        return {"value": v, "unit": "人/㎡", "severity": 3 if v >= 3.3 else 2 if v >= 2.2 else 1,
                "source": cam, "title": f"{s.place or s.street}人流密度 {v} 人/㎡"}
    if kind == "theft":
        return {"severity": _sev(rng, (30, 65, 5, 0)), "source": rng.choice(["110", cam]),
                "title": f"{s.street}{rng.choice(PLACES)}发生盗窃"}
    if kind == "fight":
        return {"severity": _sev(rng, (0, 85, 14, 1)), "source": rng.choice(["110", cam]),
                "title": f"{s.street}{rng.choice(['大排档', '酒吧街', '城中村', '夜市'])}发生打架斗殴"}
    if kind == "intrusion":
        return {"severity": 2, "source": cam,
                "title": f"{s.street}{rng.choice(['变电站', '地铁车辆段', '水厂', '工地', '学校'])}周界入侵告警"}
    if kind == "suspicious_vehicle":
        plate = f"粤{rng.choice('BBBBSL')}·{rng.choice('ABCDFGHJK')}{rng.randrange(10)}***"
        return {"severity": _sev(rng, (20, 75, 5, 0)), "source": cam, "title": f"{road}卡口发现可疑车辆 {plate}"}
    if kind == "fire":  # the callers who follow reuse the title without 火情 (see FIRE_CALLS)
        return {"severity": _sev(rng, (0, 45, 50, 5)), "source": "119",
                "title": f"{s.street}{rng.choice(['居民楼', '城中村出租屋', '工业园厂房', '餐饮店', '电动车充电点'])}火情"}
    if kind == "medical":
        return {"severity": _sev(rng, (0, 60, 35, 5)), "source": "120",
                "title": f"{s.street}{rng.choice(PLACES)}{rng.choice(['有人晕倒', '老人摔伤', '突发疾病'])}"}
    if kind == "gas_leak":
        return {"severity": _sev(rng, (0, 50, 45, 5)), "source": rng.choice(["119", "12345"]),
                "title": f"{s.street}{rng.choice(['居民楼', '餐饮店', '施工现场'])}燃气泄漏"}
    if kind == "public_complaint":
        return {"severity": _sev(rng, (10, 75, 15, 0)), "source": "12345", "title": f"{s.street}{rng.choice(COMPLAINTS)}"}
    if kind == "building_collapse":
        return {"severity": 4, "source": "119", "title": f"{s.street}一处旧建筑局部坍塌"}
    if kind == "flood":
        depth = rng.randint(10, 70)
        return {"value": depth, "unit": "cm", "severity": 2 if depth < 25 else 3 if depth < 55 else 4,
                "source": rng.choice(["12345", "110", cam]), "title": f"{s.street}{rng.choice(FLOOD_SPOTS)}积水约 {depth} cm"}
    raise ValueError(f"no builder for kind {kind!r}")


# Words of the callers who report a fire already reported: "<street><place>" + one of these.
FIRE_CALLS = ["冒出浓烟", "看见明火", "起火了", "闻到焦味，窗口有烟"]


# --- episodes: trouble the early-warning rules (alerts.yaml) should see coming -----------------------------

@dataclass(frozen=True)
class Episode:
    """A stretch of trouble laid over the day: readings of ``kinds`` at a place pushed into ``value`` (and more of
    them, one every ``every_s``), or a feed that falls silent (``drop``)."""

    name: str
    domain: str
    kinds: tuple[str, ...] = ()
    district: str | None = None  # where: a district ...
    zone: str | None = None  # ... or a zone of the city pack (zones.yaml)
    value: tuple[float, float] = (0.0, 0.0)
    every_s: float = 0.0
    severity: int = 1
    unit: str = ""
    title: str = ""  # with {place} and {value}
    drop: bool = False


EPISODES = {
    # 福田 under a haze: every station reads 170-230 (中度至重度污染), a reading every 30 s.
    "pollution": Episode("pollution", "environment", ("aqi",), district="440304", value=(170, 230), every_s=30,
                         severity=2, unit="AQI", title="{place}空气质量指数 {value}（中度污染）"),
    # 深南大道 jammed through Futian: loop detectors read 6-13 km/h, one every 20 s.
    "jam": Episode("jam", "traffic", ("speed",), zone="shennan_futian", value=(6, 13), every_s=20,
                   unit="km/h", title="{place}平均车速 {value} km/h"),
    # A crowd surging at the Universiade Centre after a match: 3.4-4.6 persons/m², a report every 10 s.
    "crowd": Episode("crowd", "security", ("crowd_density",), zone="universiade_centre", value=(3.4, 4.6),
                     every_s=10, severity=3, unit="人/㎡", title="{place}人流密度 {value} 人/㎡"),
    # The traffic feed dies: nothing of it is published.
    "feed_down": Episode("feed_down", "traffic", drop=True),
}


def episode_events(ep: Episode, rng: random.Random, start_ms: int, end_ms: int, place: tuple) -> list[tuple[int, dict]]:
    """Return the readings an episode adds in [start_ms, end_ms): (epoch ms, event fields without id and ts).

    ``place`` is (district code, name to show, corners to draw points within: [lon, lat] pairs, or a centre).
    """
    if ep.drop or ep.every_s <= 0:
        return []
    district, name, corners = place
    step = int(ep.every_s * 1000)
    first = start_ms + (-start_ms) % step
    out = []
    for ms in range(first, end_ms, step):
        lon, lat = point_in(rng, corners)
        v = round(rng.uniform(*ep.value), 1)
        out.append((ms, {"domain": ep.domain, "kind": ep.kinds[0], "district": district, "lat": lat, "lon": lon,
                         "value": v, "unit": ep.unit, "severity": ep.severity, "source": f"episode-{ep.name}",
                         "title": ep.title.format(place=name, value=f"{v:g}")}))
    return out


def point_in(rng: random.Random, corners) -> tuple[float, float]:
    """Return a random [lon, lat] inside a convex polygon's corners (a mix of them), rounded like the feeds'."""
    weights = [rng.random() for _ in corners]
    total = sum(weights)
    lon = sum(w * c[0] for w, c in zip(weights, corners)) / total
    lat = sum(w * c[1] for w, c in zip(weights, corners)) / total
    return round(lon, 5), round(lat, 5)
