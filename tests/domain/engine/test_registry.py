"""The registries (bankwx_cli/extensions.py), in-process: order, test-only areas, the route
table, late hooks, follower lookups and sensitive replies inside the engine's write units."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from bxtest import ORIGINAL_ID, Bankwx

from bankwx_cli import extensions
from bankwx_cli.context import AppContext
from bankwx_cli.domain import actions, routing, trials
from bankwx_cli.extensions import Area, ErrorMap, Registry, Request, Response
from bankwx_cli.models.replies import TextReply
from bankwx_cli.server import RouteTable
from bankwx_cli.settings import from_environment
from bankwx_cli.wechat import callback


async def _nothing(request: Request) -> Response:
    return Response(204, b"")


def _hook(name: str) -> Any:
    def hook(app: Any, runtime: Any, inbound: Any) -> None:
        return None

    hook.__name__ = name
    return hook


def test_hooks_run_in_a_fixed_order_and_test_only_entries_stay_out() -> None:
    registry = Registry()
    a, b, c, t = _hook("a"), _hook("b"), _hook("c"), _hook("t")
    registry.on_event("SCAN", b)
    registry.on_event("scan", c, order=10)
    registry.on_event("scan", a, order=-1)
    registry._area = Area("trials", "x", ("event",), test_only=True)
    registry.on_event("scan", t)
    assert registry.event_hooks(tests=False) == {"scan": (a, b, c)}
    assert registry.event_hooks(tests=True) == {"scan": (a, b, t, c)}


def test_every_entry_point_sees_the_same_registry() -> None:
    loaded = extensions.registry()
    assert loaded is extensions.registry()
    fresh = extensions.load()
    assert set(fresh.actions(True)) == set(loaded.actions(True))
    assert {"help", "welcome", "transfer_agent"} <= set(loaded.actions(False))
    assert "sleep" not in loaded.actions(False) and "sleep" in loaded.actions(True)
    events = loaded.event_hooks(False)
    assert "templatesendjobfinish" in events and "masssendjobfinish" in events
    assert len(loaded.event_hooks(True)["scan"]) == 2
    assert [r.path for r in loaded.routes(False)] == ["/api/v1/alerts", "/wx/{name}",
                                                      "/wx/{name}", "/healthz", "/readyz",
                                                      "/metrics", "/bind/{name}"]  # fmt: skip
    assert len(loaded.tag_sources(False)) == 1  # the followers area's synced tag ids
    lookups = [lookup.take.__name__ for lookup in loaded.follower_lookups(False)]
    assert lookups == ["agent_lookup"]  # the agents area's, narrowed per group commit
    assert all(lookup.candidates for lookup in loaded.follower_lookups(True))
    assert len(loaded.follower_lookups(True)) == 2
    assert "talk_to_agent" in loaded.actions(False)


def test_declarations_that_cannot_work_are_refused() -> None:
    registry = Registry()
    registry._area = Area("area", "x", ("event",))
    with pytest.raises(RuntimeError, match="not in its AREAS points"):
        registry.action("z", "an action")(trials.echo)
    registry._area = extensions._CORE
    registry.action("x", "an action")(trials.echo)
    with pytest.raises(RuntimeError, match="registered twice"):
        registry.action("x", "again")(trials.echo)
    with pytest.raises(RuntimeError, match="needs an arg"):
        registry.action("y", "y", default="1")
    registry.route("GET", "/a/{id}", _nothing)
    with pytest.raises(RuntimeError, match="registered twice"):
        registry.route(("POST", "GET"), "/a/{id}", _nothing)
    with pytest.raises(RuntimeError, match="first segment"):
        registry.route("GET", "/{id}", _nothing)
    with pytest.raises(RuntimeError, match="whole segment"):
        registry.route("GET", "/a/x{id}", _nothing)


def test_the_route_table() -> None:
    registry = Registry()
    registry.route("GET", "/healthz", _nothing)
    registry.route("GET", "/wx/{name}", _nothing)
    registry.route("POST", "/wx/{name}", _nothing)
    registry.route("POST", "/bind/{name}/{step}", _nothing)
    registry.route("POST", "/api/v1/alerts", _nothing, errors=[ErrorMap(KeyError, 422, b"k", "k")])
    table = RouteTable(registry.routes(False))
    assert table.match("/healthz") == ({"GET": registry.routes(False)[0]}, {})
    found = table.match("/wx/main")
    assert found is not None and set(found[0]) == {"GET", "POST"} and found[1] == {"name": "main"}
    assert table.match("/bind/main/2") is not None
    assert table.match("/bind/main/2")[1] == {"name": "main", "step": "2"}  # type: ignore[index]
    for path in ("/", "/wx/", "/wx/a/b", "/nope", "/healthz/", "/api/v1", "/wxx/main"):
        assert table.match(path) is None, path
    alerts = table.match("/api/v1/alerts")
    assert alerts is not None
    mapped, response = alerts[0]["POST"].failure(KeyError("x"))
    assert mapped is not None and (response.status, response.outcome) == (422, "k")
    assert alerts[0]["POST"].failure(ValueError())[1].status == 500


def test_action_context_carries_the_location() -> None:
    xml = (
        f"<xml><ToUserName><![CDATA[{ORIGINAL_ID}]]></ToUserName><FromUserName><![CDATA[o1]]>"
        "</FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[location]]>"
        "</MsgType><Location_X>31.2</Location_X><Location_Y>121.5</Location_Y><Scale>15</Scale>"
        "<Label><![CDATA[外滩]]></Label><MsgId>77</MsgId></xml>"
    )
    inbound = callback.parse(xml.encode())
    ctx = actions.ActionContext(None, None, "o1", "", None, inbound, None)  # type: ignore[arg-type]
    assert ctx.location == actions.Location(31.2, 121.5, "外滩")
    assert (ctx.msg_type, ctx.msg_id, ctx.time_left()) == ("location", "77", float("inf"))


# --- inside the engine's write units ----------------------------------------------------------


@pytest.fixture
def app(with_account: Bankwx, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppContext]:
    monkeypatch.setenv("BANKWX_TEST_ACTIONS", "1")
    for args in (["余额", "--match", "contains", "--reply-text", "余额100元"],
                 ["秘密", "--match", "exact", "--action", "trial_secret"]):  # fmt: skip
        added = with_account("keyword", "add", *args)
        assert added.exit_code == 0, added.output
    context = AppContext(from_environment())
    yield context
    context.close()


def _text(msg_id: int, content: str, openid: str = "oFollower0000000000000000001") -> Any:
    xml = (
        f"<xml><ToUserName><![CDATA[{ORIGINAL_ID}]]></ToUserName><FromUserName><![CDATA["
        f"{openid}]]></FromUserName><CreateTime>1700000000</CreateTime>"
        f"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content>"
        f"<MsgId>{msg_id}</MsgId></xml>"
    )
    return callback.parse(xml.encode())


def _quick(engine: routing.Engine, inbound: Any, ticket: routing.Ticket) -> Any:
    runtime = engine.runtime("main")
    decision = engine.quick(runtime, inbound)
    assert decision is not None
    finished, got = threading.Event(), []

    def done(value: Any, error: BaseException | None) -> None:
        got.append(error or value)
        finished.set()

    engine.answer(runtime, inbound, decision, ticket, done)
    assert finished.wait(5)
    return got[0]


def test_every_late_hook_runs(app: AppContext) -> None:
    engine = routing.Engine(app)
    engine.refresh(True)
    ticket = routing.Ticket()
    assert ticket.abandon()
    result = _quick(engine, _text(51, "余额"), ticket)
    assert result.outcome == "late_enqueued"  # the outbox's hook, registered first
    row = app.store.messages.all(account="main")[-1]
    state = app.store.follower_state.get("main", "oFollower0000000000000000001")
    assert state is not None and state.scene == f"late:{row.id}"  # the test area's too


def test_the_lookup_takes_a_quick_message_in_the_same_unit(app: AppContext) -> None:
    app.store.follower_state.set_scene("main", "oAgent", trials.AGENT_SCENE)
    engine = routing.Engine(app)
    engine.refresh(True)
    result = _quick(engine, _text(52, "余额", "oAgent"), routing.Ticket())
    assert (result.route, result.outcome) == ("trial:agent", "forwarded")
    assert "坐席（测试）已收到：余额" in result.plain_reply.decode()
    inbound, out = sorted(app.store.messages.all(account="main"), key=lambda m: m.id)
    assert (inbound.route, inbound.outcome) == ("trial:agent", "forwarded")
    assert out.content == "坐席（测试）已收到：余额"
    retry = _quick(engine, _text(52, "余额", "oAgent"), routing.Ticket())
    assert retry.outcome == "retry_replayed" and retry.plain_reply == result.plain_reply


def test_a_sensitive_reply_is_answered_but_not_kept(app: AppContext) -> None:
    engine = routing.Engine(app)
    engine.refresh(True)
    runtime = engine.runtime("main")
    inbound = _text(53, "秘密")
    assert engine.quick(runtime, inbound) is None  # an action: the handler path
    result = engine.process(runtime, inbound, routing.Ticket())
    assert trials.SECRET_REPLY in (result.plain_reply or b"").decode()
    log = sorted(app.store.messages.all(account="main"), key=lambda m: m.id)
    assert log[1].content == routing.SENSITIVE_LOGGED
    assert app.store.messages.state_of(log[0].id).reply is None
    retry = engine.process(runtime, _text(53, "秘密"), routing.Ticket())
    assert retry.plain_reply is None and retry.outcome == "retry_replayed"


def test_a_failing_lookup_lets_routing_go_on(app: AppContext) -> None:
    def broken(app: Any, runtime: Any, inbound: Any) -> None:
        raise RuntimeError("lookup down")

    engine = routing.Engine(app, lookups=(extensions.FollowerLookup(broken),))
    engine.refresh(True)
    result = _quick(engine, _text(54, "余额"), routing.Ticket())
    assert result.outcome == "replied" and "余额100元" in result.plain_reply.decode()


def _counted(app: AppContext, candidates: Any) -> tuple[routing.Engine, list[str], list[Any]]:
    """An engine whose one lookup takes every message it is asked about, counting calls."""
    taken: list[str] = []
    asked: list[Any] = []

    def take(app: Any, runtime: Any, inbound: Any) -> routing.Decision:
        taken.append(inbound.openid)
        return routing.Decision(TextReply("taken"), route="test:lookup", outcome="forwarded")

    def narrowed(app: Any, account: str, openids: list[str]) -> set[str]:
        asked.append((account.name, list(openids)))
        return set(candidates(openids))

    engine = routing.Engine(app, lookups=(extensions.FollowerLookup(take, narrowed),))
    engine.refresh(True)
    return engine, taken, asked


def test_a_narrowed_lookup_runs_only_for_its_candidates(app: AppContext) -> None:
    engine, taken, asked = _counted(app, lambda openids: [o for o in openids if o == "oTaken"])
    free = _quick(engine, _text(55, "余额", "oFree"), routing.Ticket())
    assert free.outcome == "replied" and taken == []  # not a candidate: never asked
    assert asked == [("main", ["oFree"])]
    held = _quick(engine, _text(56, "余额", "oTaken"), routing.Ticket())
    assert (held.route, held.outcome) == ("test:lookup", "forwarded") and taken == ["oTaken"]
    runtime = engine.runtime("main")  # the handler path narrows the same way
    done = engine.process(runtime, _text(57, "秘密", "oFree"), routing.Ticket())
    assert done.route != "test:lookup" and taken == ["oTaken"]
    done = engine.process(runtime, _text(58, "秘密", "oTaken"), routing.Ticket())
    assert done.route == "test:lookup" and taken == ["oTaken", "oTaken"]


def test_each_narrowed_lookup_takes_only_its_own_candidates(app: AppContext) -> None:
    """Two lookups narrowed to different followers: a message either may take goes to its
    unit, which asks them in turn; one neither may take is answered and logged at once."""
    taken: list[tuple[str, str]] = []

    def lookup(name: str) -> extensions.FollowerLookup:
        def take(app: Any, runtime: Any, inbound: Any) -> routing.Decision | None:
            taken.append((name, inbound.openid))
            if inbound.openid != f"o{name}":
                return None
            return routing.Decision(TextReply(name), route=f"test:{name}", outcome="forwarded")

        def narrowed(app: Any, account: Any, openids: list[str]) -> set[str]:
            return {o for o in openids if o == f"o{name}"}

        return extensions.FollowerLookup(take, narrowed)

    engine = routing.Engine(app, lookups=(lookup("A"), lookup("B")))
    engine.refresh(True)
    results = {o: _quick(engine, _text(70 + i, "余额", o), routing.Ticket())
               for i, o in enumerate(("oA", "oB", "oFree"))}  # fmt: skip
    assert [(r.route, r.outcome) for r in results.values()] == [
        ("test:A", "forwarded"), ("test:B", "forwarded"), (results["oFree"].route, "replied")
    ]  # fmt: skip
    assert results["oFree"].route.startswith("rule:")
    assert taken == [("A", "oA"), ("B", "oB")]  # oB's unit skips A: not A's candidate
    logged = app.store.db.all("SELECT openid, route, out_content FROM messages "
                              "WHERE direction = 'in' ORDER BY openid")  # fmt: skip
    assert [tuple(r) for r in logged] == [
        ("oA", "test:A", "A"), ("oB", "test:B", "B"),
        ("oFree", results["oFree"].route, results["oFree"].plain_reply.decode().split(
            "<Content><![CDATA[")[1].split("]]>")[0]),
    ]  # fmt: skip


def test_failing_candidates_leave_the_lookup_unnarrowed(app: AppContext) -> None:
    def broken(openids: list[str]) -> list[str]:
        raise RuntimeError("candidates down")

    engine, taken, _ = _counted(app, broken)
    result = _quick(engine, _text(59, "余额", "oAny"), routing.Ticket())
    assert result.route == "test:lookup" and taken == ["oAny"]  # asked as if not narrowed


def test_the_trial_lookup_is_narrowed_to_followers_in_its_scenes(app: AppContext) -> None:
    app.store.follower_state.set_scene("main", "oAgent", trials.AGENT_SCENE)
    app.store.follower_state.set_scene("main", "oOther", "qr-branch")
    main = app.store.accounts.get("main")
    assert main is not None
    found = trials.agent_candidates(app, main, ["oAgent", "oOther", "oNone"])
    assert found == {"oAgent"}
    other = dataclasses.replace(main, name="other")
    assert trials.agent_candidates(app, other, ["oAgent"]) == set()


def test_a_hook_that_answers_ends_routing(app: AppContext) -> None:
    """The second SCAN hook answers: its decision is the engine's (no built-in scan route)."""
    engine = routing.Engine(app)
    engine.refresh(True)
    runtime = engine.runtime("main")
    xml = (
        f"<xml><ToUserName><![CDATA[{ORIGINAL_ID}]]></ToUserName><FromUserName><![CDATA[o9]]>"
        "</FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[SCAN]]></Event><EventKey><![CDATA[trial-x]]></EventKey></xml>"
    )
    decision = engine.decide(runtime, callback.parse(xml.encode()))
    assert decision == routing.Decision(TextReply("第二个钩子看到：trial-x"), route="trial:scan")


def test_a_message_hook_takes_its_type_off_the_quick_path(app: AppContext) -> None:
    seen: list[str] = []

    def hook(app: Any, runtime: Any, inbound: Any) -> routing.Decision | None:
        seen.append(inbound.content)
        if inbound.content == "余额":
            return None  # routing goes on
        return routing.Decision(TextReply("hooked"), route="hook:text")

    engine = routing.Engine(app)
    engine._message_hooks = {"text": (hook,)}
    engine.refresh(True)
    runtime = engine.runtime("main")
    assert engine.quick(runtime, _text(60, "余额")) is None
    assert engine.decide(runtime, _text(60, "余额")).route.startswith("rule:")
    assert engine.decide(runtime, _text(61, "别的")).route == "hook:text"
    assert seen == ["余额", "别的"]
