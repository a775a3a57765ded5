"""The claims' mapping of single sign-on, the district on users and the settings that go with them."""

from __future__ import annotations

import pytest

from dashboard.core.city import load_city
from dashboard.core.config import load_config
from dashboard.core.sso import ClaimMapping, ClaimsRefused, map_claims, parse_mapping
from dashboard.storage import users as accounts
from tests.helpers import TEST_PASSWORD

CITY = load_city("shenzhen")
DEPARTMENTS = [d["code"] for d in CITY.departments]


def resolve(name: str) -> str | None:
    found = CITY.resolve(name)
    return found.code if found else None


def mapped(claims: dict, mapping: ClaimMapping | None = None):
    return map_claims({"sub": "s-1", **claims}, mapping or ClaimMapping(), DEPARTMENTS, resolve)


def test_the_default_claim_names_give_each_field():
    who = mapped({"preferred_username": "dora", "panorama_role": "officer", "panorama_district": "福田区"})
    assert (who.username, who.role, who.department, who.district) == ("dora", "officer", None, "440304")
    who = mapped({"preferred_username": "fay", "panorama_role": "liaison", "panorama_department": "fire"})
    assert (who.role, who.department, who.district) == ("liaison", "fire", None)


def test_a_mapping_reads_other_claims_nested_ones_and_translates_the_providers_roles():
    mapping = parse_mapping("role=realm_access.roles,district=org.district,username=email",
                            "cc-duty=officer, cc-head=commander")
    claims = {"email": "dora@sz.gov.cn", "realm_access": {"roles": ["offline_access", "cc-duty", "cc-head"]},
              "org": {"district": "futian"}}
    who = mapped(claims, mapping)
    assert (who.username, who.role, who.district) == ("dora@sz.gov.cn", "commander", "440304")
    # with a role map, a value that happens to be a role's name means nothing
    with pytest.raises(ClaimsRefused) as err:
        mapped({"realm_access": {"roles": ["admin"]}}, mapping)
    assert err.value.reason == "no_role"


@pytest.mark.parametrize("claims, reason", [
    ({}, "no_role"),
    ({"panorama_role": "superuser"}, "no_role"),
    ({"panorama_role": ["staff"]}, "no_role"),
    ({"panorama_role": 7}, "no_role"),
    ({"panorama_role": "liaison"}, "bad_department"),
    ({"panorama_role": "officer", "panorama_department": "nasa"}, "bad_department"),
    ({"panorama_role": "officer", "panorama_department": ["fire", "police"]}, "bad_department"),
    ({"panorama_role": "officer", "panorama_district": "atlantis"}, "bad_district"),
    ({"panorama_role": "officer", "panorama_district": {"code": "440304"}}, "bad_district"),
    ({"panorama_role": "officer", "preferred_username": "x" * 65}, "bad_username"),
])
def test_claims_that_make_no_user_are_refused_with_their_reason(claims, reason):
    with pytest.raises(ClaimsRefused) as err:
        mapped(claims)
    assert err.value.reason == reason


def test_without_a_name_claim_the_subject_is_the_name():
    assert mapped({"panorama_role": "viewer"}).username == "s-1"


@pytest.mark.parametrize("claims, role_map", [("rank=x", None), ("role", None), (None, "x=superuser"),
                                              (None, "=officer")])
def test_a_wrong_mapping_is_refused_at_start(claims, role_map):
    with pytest.raises(ValueError):
        parse_mapping(claims, role_map)


def test_single_sign_on_settings_go_together_and_local_accounts_need_a_way_in(tmp_path):
    with pytest.raises(ValueError, match="together"):
        load_config({"PANORAMA_OIDC_ISSUER": "https://id.example"}, environ={}, instance_path=tmp_path)
    with pytest.raises(ValueError, match="PANORAMA_LOCAL_LOGIN"):
        load_config({"PANORAMA_LOCAL_LOGIN": "0"}, environ={}, instance_path=tmp_path)
    cfg = load_config(environ={"PANORAMA_OIDC_ISSUER": "https://id.example", "PANORAMA_OIDC_CLIENT_ID": "p",
                               "PANORAMA_OIDC_CLIENT_SECRET": "s", "PANORAMA_LOCAL_LOGIN": "off"},
                      instance_path=tmp_path)
    assert cfg["PANORAMA_LOCAL_LOGIN"] is False and cfg["PANORAMA_OIDC_SCOPE"] == "openid profile"


def test_users_create_takes_a_district_of_the_registry_and_api_me_answers_it(app):
    server = app.server
    runner = server.test_cli_runner()
    res = runner.invoke(args=["users", "create", "dora", "--role", "officer", "--district", "futian"],
                        input=f"{TEST_PASSWORD}\n")
    assert res.exit_code == 0 and "created dora (officer, 440304)" in res.output, res.output
    res = runner.invoke(args=["users", "create", "ann", "--role", "officer", "--district", "440399"],
                        input=f"{TEST_PASSWORD}\n")
    assert res.exit_code != 0 and "unknown district '440399'" in res.output and "440304" in res.output
    res = runner.invoke(args=["users", "list"])
    assert "440304" in res.output and "password" in res.output and "ann" not in res.output
    client = server.test_client()
    assert client.post("/api/session", json={"username": "dora", "password": TEST_PASSWORD}).status_code == 200
    assert client.get("/api/me").get_json() == {"username": "dora", "role": "officer", "department": None,
                                                "district": "440304"}


def test_a_provider_user_is_found_by_its_subject_and_follows_the_claims(any_engine):
    first = accounts.sso_sign_in(any_engine, "https://id s-1", "dora", "viewer", None, None)
    again = accounts.sso_sign_in(any_engine, "https://id s-1", "dora-renamed", "officer", None, "440304")
    assert again.id == first.id and (again.username, again.role, again.district) == ("dora", "officer", "440304")
    assert accounts.get_user(any_engine, first.id).district == "440304"
    # no password signs it in, not even an empty one
    assert accounts.authenticate(any_engine, "dora", "") is None
    # another subject with the same name is refused, and so is a local account's name
    accounts.create_user(any_engine, "root", TEST_PASSWORD, "admin", None, [])
    for subject, name in (("https://id s-2", "dora"), ("https://id s-3", "ROOT")):
        with pytest.raises(accounts.UserError):
            accounts.sso_sign_in(any_engine, subject, name, "admin", None, None)
    # a disabled provider user stays disabled (the callback refuses it)
    accounts.set_active(any_engine, "dora", False)
    assert not accounts.sso_sign_in(any_engine, "https://id s-1", "dora", "officer", None, None).active


@pytest.mark.parametrize("lang", ("zh", "en"))
def test_the_sign_in_page_and_every_refusal_are_words_of_the_readers_language(lang):
    import ast
    import re

    from dashboard.core import sso
    from dashboard.web import oidc
    from layouts.login import login_layout
    from tests.test_words import _words_outside_code

    # the reasons sso.py refuses with: ClaimsRefused's first argument, or _one's second (which it passes on)
    where = {"ClaimsRefused": 0, "_one": 1}
    raised = {ast.literal_eval(node.args[where[node.func.id]])
              for node in ast.walk(ast.parse(open(sso.__file__, encoding="utf-8").read()))
              if isinstance(node, ast.Call) and getattr(node.func, "id", "") in where
              and not (node.func.id == "ClaimsRefused" and isinstance(node.args[0], ast.Name))}
    assert raised == {"no_role", "bad_username", "bad_department", "bad_district"}
    assert raised <= set(oidc.STATUS) and set(oidc.STATUS) <= set(oidc._TEXT)
    words = [oidc.text(key, lang) for key in oidc._TEXT]
    words += _words_outside_code(login_layout(lang, "/", sso=True, local=True, signed_out=True))
    assert len(words) > len(oidc._TEXT) + 5
    for text in words:
        if lang == "zh":
            assert not re.search(r"[A-Za-z]{2,}", text), text
        else:
            assert not re.search(r"[\u4e00-\u9fff]", text), text
