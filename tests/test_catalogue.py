"""The service catalogue: published by staff on the real platform, cached on the speaker, used in dialogue."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from assistant.catalogue import Catalogue, CatalogueCache, catalogue_skill, check_hours
from assistant.errors import InputError
from assistant.platform_client import PlatformClient
from assistant.platform_server import BackgroundServer, create_app
from assistant.platform_store import PlatformStore
from intents.recognize import IntentResult
from voices.prompts import Prompts

TIMEOUT = 10  # seconds, for every HTTP call
CST = dt.timezone(dt.timedelta(hours=8))
THURSDAY = dt.datetime(2026, 11, 26, 9, 0, tzinfo=CST)  # 2026-11-26 is a Thursday

# the sentences this module needs; the lead keeps them in voices/prompts.yaml
PROMPTS = """
list_last_joiner: "和"
menu_dishes: "{day}食堂有{dishes}。"
menu_unknown: "{day}的菜单社区还没有发过来，我还不知道食堂有什么。"
hours_window: "{day}{start}到{end}"
hours_closed_meal: "食堂现在不送餐，{when}可以订。"
hours_closed_service: "{service}现在不接单，{when}可以约。"
"""


def a_catalogue(**changes: Any) -> dict[str, Any]:
    return {"services": [{"service": "meal", "name": "午饭", "price": 12.0, "hours": ["10:30-13:00"],
                          "days": [1, 2, 3, 4, 5, 6, 7]},
                         {"service": "meal", "name": "晚饭", "price": 10.0, "hours": ["16:30-18:00"],
                          "days": [1, 2, 3, 4, 5]},
                         {"service": "haircut", "name": "上门理发", "price": 15.0, "hours": ["09:00-11:00"],
                          "days": [2, 4]}],
            "menu": {"date": "2026-11-26", "dishes": ["红烧肉", "青菜豆腐"]}, **changes}


@pytest.fixture
def prompts() -> Prompts:
    data = yaml.safe_load(resources.files("voices").joinpath("prompts.yaml").read_text("utf-8"))
    data["prompts"].update(yaml.safe_load(PROMPTS))
    return Prompts.parse(yaml.safe_dump(data, allow_unicode=True))


@pytest.fixture
def cache(tmp_path: Path) -> CatalogueCache:
    cache = CatalogueCache.in_dir(tmp_path)
    cache.store(a_catalogue())
    return cache


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[tuple[str, PlatformStore, str, str]]:
    store = PlatformStore.in_dir(tmp_path / "platform")
    staff, home = store.add_staff(), store.add_home("home-001")
    with BackgroundServer(create_app(store)) as server:
        yield server.url, store, staff, home
    store.close()


def call(url: str, method: str, token: str | None, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, url + "/api/v1/catalogue", headers=headers, timeout=TIMEOUT, **kwargs)


# ---- the platform ------------------------------------------------------------------------------

def test_staff_publish_and_every_token_reads_it_back(platform: tuple[str, PlatformStore, str, str]) -> None:
    url, _, staff, home = platform
    missing = call(url, "GET", home)
    assert missing.status_code == 404 and "no service catalogue" in missing.json()["error"]
    assert call(url, "PUT", staff, json=a_catalogue()).status_code == 200
    assert call(url, "GET", home).json() == a_catalogue()
    newer = a_catalogue(menu={"date": "2026-11-27", "dishes": ["饺子"]})
    call(url, "PUT", staff, json=newer)
    assert call(url, "GET", staff).json() == newer  # last write wins


@pytest.mark.parametrize("change", [
    {"services": [{"service": "pizza", "name": "x", "price": 1, "hours": ["10:00-11:00"], "days": [1]}]},
    {"services": [{"service": "meal", "name": "午饭", "price": -1, "hours": ["10:00-11:00"], "days": [1]}]},
    {"services": [{"service": "meal", "name": "午饭", "price": 1, "hours": ["10:30-24:00"], "days": [1]}]},
    {"services": [{"service": "meal", "name": "午饭", "price": 1, "hours": [], "days": [1]}]},
    {"services": [{"service": "meal", "name": "午饭", "price": "12元", "hours": ["10:00-11:00"], "days": [1]}]},
    {"services": [{"service": "meal", "name": "午饭", "price": 1, "hours": ["10:30 to 13:00"], "days": [1]}]},
    {"services": [{"service": "meal", "name": "午饭", "price": 1, "hours": ["10:00-11:00"], "days": [0, 8]}]},
    {"services": [{"service": "meal", "name": "", "price": 1, "hours": ["10:00-11:00"], "days": [1]}]},
    {"menu": {"date": "26.11.2026", "dishes": ["饺子"]}},
    {"menu": {"date": "2026-11-26", "dishes": []}},
    {"surprise": True},
])
def test_invalid_catalogues_get_422_and_nothing_is_stored(platform: tuple[str, PlatformStore, str, str],
                                                          change: dict[str, Any]) -> None:
    url, _, staff, home = platform
    answer = call(url, "PUT", staff, json=a_catalogue(**change))
    assert answer.status_code == 422 and answer.json()["error"].startswith("invalid request")
    assert call(url, "GET", home).status_code == 404


def test_only_staff_may_publish(platform: tuple[str, PlatformStore, str, str]) -> None:
    url, _, staff, home = platform
    assert call(url, "PUT", None, json=a_catalogue()).status_code == 401
    assert call(url, "PUT", "not-a-token", json=a_catalogue()).status_code == 401
    refused = call(url, "PUT", home, json=a_catalogue())
    assert refused.status_code == 403 and "staff" in refused.json()["error"]
    assert call(url, "GET", None).status_code == 401
    assert call(url, "GET", staff).status_code == 404


# ---- the cache on the speaker -------------------------------------------------------------------

def test_refresh_keeps_the_catalogue_and_survives_the_platform_going_away(
        platform: tuple[str, PlatformStore, str, str], tmp_path: Path) -> None:
    url, _, staff, home = platform
    cache = CatalogueCache.in_dir(tmp_path / "speaker")
    client = PlatformClient(url, home)
    assert cache.refresh(client) is None and cache.is_open("meal", THURSDAY) is None  # nothing published yet
    call(url, "PUT", staff, json=a_catalogue())
    assert cache.refresh(client) == Catalogue.from_json(a_catalogue())
    assert json.loads((tmp_path / "speaker" / "catalogue.json").read_text("utf-8")) == a_catalogue()
    unreachable = PlatformClient("http://127.0.0.1:9", home, connect_timeout=1)
    assert cache.refresh(unreachable) == Catalogue.from_json(a_catalogue())  # logged, cache kept
    assert cache.refresh(PlatformClient(url, "wrong")) == Catalogue.from_json(a_catalogue())
    client.close()


def test_bad_data_is_refused_and_the_old_catalogue_stays(cache: CatalogueCache) -> None:
    with pytest.raises(InputError, match="HH:MM"):
        cache.store(a_catalogue(services=[{"service": "meal", "name": "午饭", "price": 1, "hours": ["noon"]}]))
    assert cache.load() == Catalogue.from_json(a_catalogue())


def test_round_trip() -> None:
    assert Catalogue.from_json(a_catalogue()).to_json() == a_catalogue()
    assert Catalogue.from_json(a_catalogue(menu=None)).to_json() == a_catalogue(menu=None)


def test_menu_only_for_its_day(cache: CatalogueCache) -> None:
    assert cache.menu_for(dt.date(2026, 11, 26)) == ("红烧肉", "青菜豆腐")
    assert cache.menu_for(dt.date(2026, 11, 27)) is None


@pytest.mark.parametrize(("service", "moment", "is_open", "opens"), [
    ("meal", THURSDAY, False, THURSDAY.replace(hour=10, minute=30)),
    ("meal", THURSDAY.replace(hour=10, minute=30), True, THURSDAY.replace(hour=10, minute=30)),
    ("meal", THURSDAY.replace(hour=13), False, THURSDAY.replace(hour=16, minute=30)),  # end is exclusive
    ("meal", THURSDAY.replace(day=28, hour=17), False, THURSDAY.replace(day=29, hour=10, minute=30)),  # Sat: no dinner
    ("haircut", THURSDAY.replace(hour=11), False, THURSDAY.replace(day=1, month=12, hour=9)),  # next Tuesday
    ("cleaning", THURSDAY, None, None),  # not listed: unknown, the community decides
])
def test_hours(cache: CatalogueCache, service: str, moment: dt.datetime, is_open: bool | None,
               opens: dt.datetime | None) -> None:
    assert cache.is_open(service, moment) is is_open
    assert cache.next_opening(service, moment) == opens


def test_hours_past_midnight_and_round_the_clock(tmp_path: Path, prompts: Prompts) -> None:
    cache = CatalogueCache.in_dir(tmp_path)
    cache.store(a_catalogue(services=[
        {"service": "escort", "name": "夜间陪护", "price": 50, "hours": ["22:00-06:00"], "days": [4]},
        {"service": "medical", "name": "值班医生", "price": 0, "hours": ["00:00-00:00"], "days": [1, 2, 3, 4, 5, 6, 7]}]))
    friday_night = THURSDAY.replace(day=27, hour=5)
    assert cache.is_open("escort", friday_night) is True  # Thursday's window runs into Friday
    assert cache.is_open("escort", friday_night.replace(hour=6)) is False
    assert cache.next_opening("escort", friday_night.replace(hour=6)) == THURSDAY.replace(day=3, month=12, hour=22)
    assert check_hours(cache, prompts, "escort", THURSDAY) == "陪同出门现在不接单，晚上十点到六点可以约。"
    assert all(cache.is_open("medical", THURSDAY.replace(hour=hour)) for hour in (0, 9, 23))


def test_without_a_catalogue_everything_is_unknown(tmp_path: Path, prompts: Prompts) -> None:
    empty = CatalogueCache.in_dir(tmp_path)
    assert empty.is_open("meal", THURSDAY) is None and empty.next_opening("meal", THURSDAY) is None
    assert empty.menu_for(THURSDAY.date()) is None
    assert check_hours(empty, prompts, "meal", THURSDAY) is None


# ---- dialogue -----------------------------------------------------------------------------------

def ask_menu(cache: CatalogueCache, prompts: Prompts, date: str | None = None) -> tuple[str, ...]:
    skill = catalogue_skill(cache, prompts, lambda: THURSDAY)
    return skill(IntentResult("今天食堂有什么", "menu", 1.0, {"date": date} if date else {})).lines


def test_the_menu_is_read_out(cache: CatalogueCache, prompts: Prompts) -> None:
    assert ask_menu(cache, prompts) == ("今天食堂有红烧肉和青菜豆腐。",)
    cache.store(a_catalogue(menu={"date": "2026-11-26", "dishes": ["红烧肉", "鱼香肉丝", "青菜豆腐"]}))
    assert ask_menu(cache, prompts) == ("今天食堂有红烧肉、鱼香肉丝和青菜豆腐。",)


def test_honest_without_a_menu_for_the_day(cache: CatalogueCache, prompts: Prompts, tmp_path: Path) -> None:
    assert ask_menu(cache, prompts, "2026-11-27") == ("明天的菜单社区还没有发过来，我还不知道食堂有什么。",)
    assert ask_menu(CatalogueCache(tmp_path / "none.json"), prompts) == \
        ("今天的菜单社区还没有发过来，我还不知道食堂有什么。",)


def test_ordering_outside_hours_is_explained(cache: CatalogueCache, prompts: Prompts) -> None:
    assert check_hours(cache, prompts, "meal", THURSDAY) == "食堂现在不送餐，十点半到下午一点可以订。"
    assert check_hours(cache, prompts, "meal", THURSDAY.replace(hour=12)) is None
    assert check_hours(cache, prompts, "meal", THURSDAY.replace(hour=19)) == \
        "食堂现在不送餐，明天十点半到下午一点可以订。"
    assert check_hours(cache, prompts, "haircut", THURSDAY.replace(hour=11)) == \
        "上门理发现在不接单，星期二九点到十一点可以约。"
    assert check_hours(cache, prompts, "cleaning", THURSDAY) is None
