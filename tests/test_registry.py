"""Plugin discovery and the registry: built-ins, real entry points, failures, clashes, env vars."""

from __future__ import annotations

import sys

import pytest
import torch
from fixtures.distributions import (
    BROKEN_HOOK_PLUGIN,
    BROKEN_IMPORT_PLUGIN,
    CLASH_PLUGIN,
    GOOD_PLUGIN,
    plugin_sandbox,
)

import snnkit.registry
from snnkit import IF, LI, LIF, SnnkitError
from snnkit.hookspecs import KINDS
from snnkit.reference.bptt import BPTT, BPTTNeuron, DetachedResetBPTT
from snnkit.registry import get_registry, load_registry, reload_registry
from snnkit.surrogates import ATan, Surrogate

BUILTIN_GRADIENTS = {"bptt", "bptt-detached-reset", "exact-autograd"}
BUILTIN_NEURONS = {"lif", "if", "li", "alif", "rf"}
BUILTIN_SURROGATES = {"exponential", "fast_sigmoid", "atan", "gaussian", "triangle", "rectangle"}
BUILTIN_LOSSES = {
    "ce_max",
    "ce_sum",
    "ce_sum_exp",
    "ce_last",
    "ce_per_step",
    "spike_count_mse",
    "ttfs_ce",
}
BUILTIN_DATASETS = {"yinyang", "randman"}


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    with plugin_sandbox(tmp_path, monkeypatch) as box:
        yield box


def install_good(sandbox):
    sandbox.install(
        "snnkit-fixture-plugin", "0.3", GOOD_PLUGIN, {"fixture": "snnkit_fixture_plugin"}
    )


def install_broken(sandbox):
    sandbox.install(
        "snnkit-fixture-broken", "0.1", BROKEN_IMPORT_PLUGIN, {"broken": "snnkit_fixture_broken"}
    )


def install_clash(sandbox):
    sandbox.install("snnkit-fixture-clash", "0.2", CLASH_PLUGIN, {"clash": "snnkit_fixture_clash"})


def mine(plugin) -> bool:
    """The built-in plugin or one of this file's fixtures (ignores other installed plugins)."""
    return plugin.module == "snnkit.builtin" or plugin.distribution.startswith("snnkit-fixture-")


def plugin_names(registry) -> list[str]:
    return [p.name for p in registry.plugins if mine(p)]


def failures(registry) -> list[str]:
    return [p.name for p in registry.failures if mine(p)]


def clashes(registry) -> list[tuple[str, str]]:
    return [key for key, found in registry.clashes.items() if any(mine(e.plugin) for e in found)]


# -- built-ins ---------------------------------------------------------------------------------


def test_builtins_are_registered_from_the_snnkit_distribution():
    registry = load_registry(entry_points=False)
    assert set(registry.names("gradient")) == BUILTIN_GRADIENTS
    assert set(registry.names("neuron")) == BUILTIN_NEURONS
    assert set(registry.names("surrogate")) == BUILTIN_SURROGATES
    assert BUILTIN_LOSSES <= set(registry.names("loss"))
    assert BUILTIN_DATASETS <= set(registry.names("dataset"))
    for kind, entries in registry.entries.items():
        for name, entry in entries.items():
            assert entry.kind == kind and entry.name == name
            assert entry.plugin.distribution == "snnkit"
            assert entry.plugin.module == "snnkit.builtin"
            assert entry.plugin.version == snnkit.__version__
    assert plugin_names(registry) == ["snnkit"]
    assert registry.failures == [] and registry.clashes == {}


def test_builtin_objects_have_the_right_types_and_parameters():
    registry = load_registry(entry_points=False)
    assert type(registry.gradient("bptt")) is BPTT
    assert type(registry.gradient("bptt-detached-reset")) is DetachedResetBPTT
    assert registry.gradient("bptt-detached-reset").oracle == "bptt-detached-reset"
    assert registry.neuron("lif") == LIF()
    assert registry.neuron("lif", tau_mem=5.0).tau_mem == 5.0
    assert isinstance(registry.neuron("if"), IF) and isinstance(registry.neuron("li"), LI)
    assert registry.surrogate("atan", alpha=3.0) == ATan(alpha=3.0)
    for name in BUILTIN_SURROGATES:
        assert isinstance(registry.surrogate(name), Surrogate)
    assert registry.loss("ce_max").name == "ce_max"
    spec = registry.dataset("yinyang")
    assert spec.name == "yinyang" and spec.num_inputs == 5 and len(spec.classes) == 3
    assert registry.dataset("randman").name == "randman"


@pytest.mark.parametrize(
    ("kind", "known"),
    [
        ("gradient", BUILTIN_GRADIENTS),
        ("neuron", BUILTIN_NEURONS),
        ("surrogate", BUILTIN_SURROGATES),
        ("loss", BUILTIN_LOSSES),
        ("dataset", BUILTIN_DATASETS),
    ],
)
def test_unknown_name_raises_listing_known_names(kind, known):
    registry = load_registry(entry_points=False)
    with pytest.raises(SnnkitError, match=f"unknown {kind} 'nope'") as info:
        registry.entry(kind, "nope")
    for name in known:
        assert name in str(info.value)
    with pytest.raises(SnnkitError):
        registry.get(kind, "nope")


def test_typed_getters_reject_unknown_names_and_parameters():
    registry = load_registry(entry_points=False)
    for getter in (
        registry.gradient,
        registry.neuron,
        registry.surrogate,
        registry.loss,
        registry.dataset,
    ):
        with pytest.raises(SnnkitError, match="unknown"):
            getter("nope")
    with pytest.raises(SnnkitError, match="no parameter bogus"):
        registry.neuron("lif", bogus=1.0)
    with pytest.raises(SnnkitError, match="surrogate 'atan'"):
        registry.surrogate("atan", bogus=1.0)


def test_entry_points_false_ignores_installed_plugins(sandbox):
    install_good(sandbox)
    install_broken(sandbox)
    registry = load_registry(entry_points=False)
    assert "fixture-bptt" not in registry.names("gradient")
    assert plugin_names(registry) == ["snnkit"] and registry.failures == []
    assert "snnkit_fixture_broken" not in sys.modules


# -- a real entry point ---------------------------------------------------------------------


def test_entry_point_plugin_is_discovered_with_its_distribution(sandbox):
    install_good(sandbox)
    registry = load_registry()
    entry = registry.entry("gradient", "fixture-bptt")
    assert entry.plugin.name == "fixture"
    assert entry.plugin.module == "snnkit_fixture_plugin"
    assert entry.plugin.distribution == "snnkit-fixture-plugin"
    assert entry.plugin.version == "0.3"
    assert entry.plugin.error is None
    surrogate = registry.entry("surrogate", "fixture_box")
    assert surrogate.plugin == entry.plugin
    assert failures(registry) == [] and clashes(registry) == []
    # built-ins load first and stay intact
    assert plugin_names(registry)[0] == "snnkit"
    assert "fixture" in plugin_names(registry)
    assert BUILTIN_GRADIENTS | {"fixture-bptt"} <= set(registry.names("gradient"))
    assert registry.entry("gradient", "bptt").plugin.distribution == "snnkit"
    assert registry.entry("surrogate", "exponential").plugin.distribution == "snnkit"


def test_plugin_method_builds_a_network_that_runs_forward_and_backward(sandbox):
    install_good(sandbox)
    registry = load_registry()
    method = registry.gradient("fixture-bptt")
    surrogate = registry.surrogate("fixture_box", width=0.8)
    assert type(surrogate).__module__ == "snnkit_fixture_plugin"
    with pytest.raises(SnnkitError, match="fixture-bptt does not support --neuron li"):
        method.check(registry.neuron("li"))

    torch.manual_seed(0)
    net = method.network("5-8-3", registry.neuron("lif"), surrogate=surrogate)
    assert isinstance(net.layers[0].neurons, BPTTNeuron)
    assert net.layers[0].surrogate is surrogate
    x = (torch.rand(12, 4, 5) < 0.3).float()
    out = net(x)
    assert out.output.shape == (12, 4, 3)
    assert len(out.hidden_spikes) == 1 and out.hidden_spikes[0].shape == (12, 4, 8)
    assert torch.isfinite(out.output).all()
    out.output.sum().backward()
    assert net.layers[0].weight.grad is not None


def test_process_registry_is_cached_until_reload(sandbox):
    first = get_registry()
    assert get_registry() is first
    assert "fixture-bptt" not in first.names("gradient")
    install_good(sandbox)
    assert get_registry() is first  # cached: the new install is not seen yet
    second = reload_registry()
    assert second is not first and get_registry() is second
    assert "fixture-bptt" in second.names("gradient")


def test_run_versions_name_the_plugin_distribution(sandbox):
    from snnkit.train import versions

    install_good(sandbox)
    found = versions(load_registry())
    assert found["plugin:fixture"] == "snnkit-fixture-plugin 0.3"
    assert found["snnkit"] == snnkit.__version__
    assert not any(key == "plugin:snnkit" for key in found)


# -- broken plugins --------------------------------------------------------------------------


def test_plugin_failing_on_import_is_reported_and_skipped(sandbox):
    install_good(sandbox)
    install_broken(sandbox)
    registry = load_registry()
    assert failures(registry) == ["broken"]
    (failure,) = [p for p in registry.failures if mine(p)]
    assert failure.distribution == "snnkit-fixture-broken" and failure.version == "0.1"
    assert failure.module == "snnkit_fixture_broken"
    assert "boom" in failure.error and "RuntimeError" in failure.error
    # the good plugin and the built-ins are unaffected
    assert registry.entry("gradient", "fixture-bptt").plugin.error is None
    assert BUILTIN_GRADIENTS <= set(registry.names("gradient"))
    assert BUILTIN_SURROGATES <= set(registry.names("surrogate"))
    for entries in registry.entries.values():
        assert all(e.plugin.name != "broken" for e in entries.values())


def test_entry_point_to_a_missing_module_is_a_failure(sandbox):
    sandbox.install("snnkit-fixture-ghost", "1.0", None, {"ghost": "snnkit_no_such_module"})
    install_good(sandbox)
    registry = load_registry()
    (failure,) = [p for p in registry.failures if mine(p)]
    assert failure.name == "ghost" and failure.distribution == "snnkit-fixture-ghost"
    assert "snnkit_no_such_module" in failure.error
    assert "fixture-bptt" in registry.names("gradient")


def test_plugin_failing_in_a_hook_keeps_none_of_its_registrations(sandbox):
    install_good(sandbox)
    sandbox.install(
        "snnkit-fixture-hook", "0.1", BROKEN_HOOK_PLUGIN, {"hook": "snnkit_fixture_hook"}
    )
    registry = load_registry()
    assert failures(registry) == ["hook"]
    (failure,) = [p for p in registry.failures if mine(p)]
    assert "hook exploded" in failure.error
    assert failure.distribution == "snnkit-fixture-hook"
    # its surrogate hook ran (and succeeded) before the gradient hook raised: still dropped
    assert "partial_surrogate" not in registry.names("surrogate")
    assert "partial-method" not in registry.names("gradient")
    assert plugin_names(registry).count("hook") == 1
    assert "fixture-bptt" in registry.names("gradient")
    assert BUILTIN_GRADIENTS <= set(registry.names("gradient"))
    assert BUILTIN_SURROGATES <= set(registry.names("surrogate"))


def test_registering_an_object_without_a_name_is_a_plugin_failure(sandbox):
    source = """
        from snnkit import hookimpl
        from snnkit.losses import MaxCrossEntropy

        class Nameless(MaxCrossEntropy):
            name = ""

        @hookimpl
        def snnkit_register_losses(register):
            register(Nameless())
    """
    sandbox.install(
        "snnkit-fixture-nameless", "0.1", source, {"nameless": "snnkit_fixture_nameless"}
    )
    registry = load_registry()
    (failure,) = [p for p in registry.failures if mine(p)]
    assert failure.name == "nameless" and "non-empty string attribute 'name'" in failure.error
    assert "" not in registry.names("loss")


# -- clashes -----------------------------------------------------------------------------------


def test_name_clash_is_recorded_and_using_the_name_is_an_error(sandbox):
    install_clash(sandbox)
    registry = load_registry()
    assert clashes(registry) == [("gradient", "bptt")]
    dists = [e.plugin.distribution for e in registry.clashes["gradient", "bptt"]]
    assert dists == ["snnkit", "snnkit-fixture-clash"]
    assert failures(registry) == []
    assert "bptt" in registry.names("gradient")  # still listed
    with pytest.raises(SnnkitError, match="gradient 'bptt' is registered by both") as info:
        registry.entry("gradient", "bptt")
    message = str(info.value)
    assert "'snnkit'" in message and "'snnkit-fixture-clash'" in message
    assert "SNNKIT_DISABLE_PLUGINS" in message
    with pytest.raises(SnnkitError, match="registered by both"):
        registry.gradient("bptt")
    # other names, from either distribution, still work
    assert type(registry.gradient("bptt-detached-reset")) is DetachedResetBPTT
    assert registry.entry("gradient", "clash-unique").plugin.distribution == "snnkit-fixture-clash"
    assert registry.neuron("lif") == LIF()


def test_disabling_the_clashing_plugin_resolves_the_clash(sandbox, monkeypatch):
    install_clash(sandbox)
    monkeypatch.setenv("SNNKIT_DISABLE_PLUGINS", "clash")
    registry = load_registry()
    assert clashes(registry) == []
    assert type(registry.gradient("bptt")) is BPTT
    assert "clash-unique" not in registry.names("gradient")


# -- SNNKIT_PLUGINS / SNNKIT_DISABLE_PLUGINS ------------------------------------------------


@pytest.fixture
def three_plugins(sandbox):
    install_good(sandbox)
    install_broken(sandbox)
    install_clash(sandbox)
    return sandbox


def test_all_entry_points_load_by_default(three_plugins):
    registry = load_registry()
    assert set(plugin_names(registry)) == {"snnkit", "fixture", "broken", "clash"}
    assert failures(registry) == ["broken"]
    assert clashes(registry) == [("gradient", "bptt")]


def test_snnkit_plugins_restricts_to_the_listed_entry_points(three_plugins, monkeypatch):
    monkeypatch.setenv("SNNKIT_PLUGINS", "fixture")
    registry = load_registry()
    assert sorted(plugin_names(registry)) == ["fixture", "snnkit"]
    assert failures(registry) == [] and clashes(registry) == []
    assert "fixture-bptt" in registry.names("gradient")
    assert "clash-unique" not in registry.names("gradient")
    assert type(registry.gradient("bptt")) is BPTT  # built-ins always load
    assert set(registry.names("neuron")) == BUILTIN_NEURONS
    assert "snnkit_fixture_broken" not in sys.modules and "snnkit_fixture_clash" not in sys.modules


def test_snnkit_plugins_is_a_comma_list(three_plugins, monkeypatch):
    monkeypatch.setenv("SNNKIT_PLUGINS", " fixture , clash ")
    registry = load_registry()
    assert sorted(plugin_names(registry)) == ["clash", "fixture", "snnkit"]
    assert failures(registry) == []


def test_snnkit_disable_plugins_excludes_entry_points(three_plugins, monkeypatch):
    monkeypatch.setenv("SNNKIT_DISABLE_PLUGINS", "fixture")
    registry = load_registry()
    assert "fixture" not in plugin_names(registry)
    assert "fixture-bptt" not in registry.names("gradient")
    assert "fixture_box" not in registry.names("surrogate")
    assert {"snnkit", "broken", "clash"} == set(plugin_names(registry))
    assert BUILTIN_GRADIENTS <= set(registry.names("gradient"))

    monkeypatch.setenv("SNNKIT_DISABLE_PLUGINS", "broken,clash")
    registry = load_registry()
    assert sorted(plugin_names(registry)) == ["fixture", "snnkit"]
    assert failures(registry) == [] and clashes(registry) == []


def test_disable_wins_over_the_allow_list(three_plugins, monkeypatch):
    monkeypatch.setenv("SNNKIT_PLUGINS", "fixture,clash")
    monkeypatch.setenv("SNNKIT_DISABLE_PLUGINS", "clash")
    registry = load_registry()
    assert sorted(plugin_names(registry)) == ["fixture", "snnkit"]


def test_empty_env_vars_do_not_restrict(three_plugins, monkeypatch):
    monkeypatch.setenv("SNNKIT_PLUGINS", "")
    monkeypatch.setenv("SNNKIT_DISABLE_PLUGINS", " ")
    registry = load_registry()
    assert set(plugin_names(registry)) == {"snnkit", "fixture", "broken", "clash"}


def test_sandbox_forgets_its_modules(sandbox):
    install_good(sandbox)
    load_registry()
    assert "snnkit_fixture_plugin" in sys.modules
    sandbox.forget_modules()
    assert "snnkit_fixture_plugin" not in sys.modules


DUPLICATE_PLUGIN = """
    from snnkit import hookimpl
    from snnkit.reference.bptt import BPTT

    class First(BPTT):
        name = "fixture-dup"
        summary = "first"

    class Second(BPTT):
        name = "fixture-dup"
        summary = "second"

    @hookimpl
    def snnkit_register_gradients(register):
        register(First())
        register(Second())
"""


def test_a_name_registered_twice_by_one_plugin_fails_that_plugin(sandbox):
    sandbox.install("snnkit-fixture-dup", "0.1", DUPLICATE_PLUGIN, {"dup": "snnkit_fixture_dup"})
    registry = load_registry()
    (failure,) = [p for p in registry.failures if mine(p)]
    assert failure.name == "dup" and failure.error == "registers gradient 'fixture-dup' twice"
    assert "fixture-dup" not in registry.names("gradient")


# -- registrations are checked at load time ---------------------------------------------------

BAD_REGISTRATIONS = {
    # what the plugin does wrong: (the hook's kind, its body, the one-line reason)
    "gradient class": (
        "gradient",
        "register(Method)",
        "gradient hooks register GradientMethod instances, got the class Method: "
        "use register(Method())",
    ),
    "neuron instance": (
        "neuron",
        "register(LIF(tau_mem=5.0))",
        "neuron hooks register NeuronSpec subclasses (users instantiate them with their "
        "options); got a LIF instance: use register(LIF)",
    ),
    "surrogate instance": (
        "surrogate",
        "register(ATan())",
        "got a ATan instance: use register(ATan)",
    ),
    "loss class": ("loss", "register(MaxCrossEntropy)", "use register(MaxCrossEntropy())"),
    "not a dataset": (
        "dataset",
        "register(object())",
        "dataset hooks register DatasetSpec instances, got a object instance",
    ),
    "kindless neuron": (
        "neuron",
        "register(Kindless)",
        "a registered neuron needs a non-empty string attribute 'kind'",
    ),
    "bad name": (
        "gradient",
        "register(named('My Method'))",
        "gradient name 'My Method' is not valid",
    ),
    "long name": ("gradient", "register(named('a' * 41))", "at most 40 characters"),
    "no summary": ("gradient", "register(named('x', summary=''))", "summary must be a non-empty"),
    "bad oracle": (
        "gradient",
        "register(named('x', oracle='autograd'))",
        "oracle must be 'bptt' or 'bptt-detached-reset' or 'exact-events'",
    ),
    "bad representation": (
        "gradient",
        "register(named('x', representation='spikes'))",
        "representation must be 'raster' or 'events'",
    ),
    "approximate without saying what": (
        "gradient",
        "register(named('x', exact=False))",
        "approximation must be a non-empty string",
    ),
    "devices as a string": ("gradient", "register(named('x', devices='cuda'))", "devices must be"),
    "neurons as a number": (
        "gradient",
        "register(named('x', neurons=3))",
        "gradient 'x': neurons must be a non-empty tuple of strings, got 3",
    ),
    "unknown run default": (
        "gradient",
        "register(named('x', run_defaults={'surogate': 'atan'}))",
        "run_defaults has no setting 'surogate'",
    ),
    "unknown event run default": (
        "gradient",
        "register(named('x', run_defaults={'events': {'lrr': 1.0}}))",
        "run_defaults['events'] has no setting 'lrr'",
    ),
    "unknown run default for a dataset": (
        "gradient",
        "register(named('x', run_defaults={'datasets': {'shd': {'events': {'lrr': 1.0}}}}))",
        "run_defaults['datasets']['shd']['events'] has no setting 'lrr'",
    ),
    "run defaults per dataset not a mapping": (
        "gradient",
        "register(named('x', run_defaults={'datasets': ['shd']}))",
        "run_defaults['datasets'] must map dataset names to settings",
    ),
}

BAD_PLUGIN = """
    from snnkit import LIF, hookimpl
    from snnkit.losses import MaxCrossEntropy
    from snnkit.neurons import NeuronSpec
    from snnkit.reference.bptt import BPTT
    from snnkit.surrogates import ATan


    class Method(BPTT):
        name = "fixture-method"


    def named(name, **attrs):
        return type("Named", (Method,), {"name": name, **attrs})()


    class Kindless(NeuronSpec):
        pass


    @hookimpl
    def snnkit_register_gradients(register):
        register(named("fixture-valid"))  # valid, but dropped with the rest of the plugin


    @hookimpl
    def HOOK(register):
        BODY
"""


@pytest.mark.parametrize("case", list(BAD_REGISTRATIONS))
def test_a_bad_registration_is_a_load_failure_with_a_one_line_reason(sandbox, case):
    kind, body, reason = BAD_REGISTRATIONS[case]
    source = BAD_PLUGIN.replace("HOOK", KINDS[kind]).replace("BODY", body)
    if kind == "gradient":  # one hook per name: merge the two
        source = source.replace('fixture-valid"))', 'fixture-valid"))\n        ' + body)
        source = source[: source.rindex("@hookimpl")]
    sandbox.install("snnkit-fixture-bad", "0.1", source, {"bad": "snnkit_fixture_bad"})
    registry = load_registry()
    (failure,) = [p for p in registry.failures if mine(p)]
    assert failure.name == "bad" and reason in failure.error, failure.error
    assert "\n" not in failure.error and "Traceback" not in failure.error
    assert "fixture-valid" not in registry.names("gradient")
    assert all(
        e.plugin.name != "bad" for found in registry.entries.values() for e in found.values()
    )


HOOK_MISTAKES = {
    "misspelt": (
        "@hookimpl\ndef snnkit_register_gradient(register):\n    pass",
        "snnkit_register_gradient is not a snnkit hook; did you mean snnkit_register_gradients?",
    ),
    "unknown": (
        "@hookimpl\ndef snnkit_setup(register):\n    pass",
        "snnkit_setup is not a snnkit hook; the hooks are snnkit_register_neurons, ",
    ),
    "not marked": (
        "def snnkit_register_losses(register):\n    pass",
        "snnkit_register_losses is not marked as a hook; decorate it with @snnkit.hookimpl",
    ),
}


@pytest.mark.parametrize("case", list(HOOK_MISTAKES))
def test_a_hook_pluggy_would_ignore_is_a_load_failure(sandbox, case):
    code, reason = HOOK_MISTAKES[case]
    source = f"from snnkit import hookimpl\n\n{code}\n"
    sandbox.install("snnkit-fixture-hooks", "0.1", source, {"hooks": "snnkit_fixture_hooks"})
    registry = load_registry()
    (failure,) = [p for p in registry.failures if mine(p)]
    assert failure.error.startswith(reason), failure.error


def test_a_plugin_that_registers_nothing_is_listed_with_its_hooks(sandbox):
    source = """
        from snnkit import hookimpl

        helper_value = 3  # other names are the plugin's own business

        @hookimpl
        def snnkit_register_losses(register):
            pass
    """
    sandbox.install("snnkit-fixture-empty", "0.4", source, {"empty": "snnkit_fixture_empty"})
    registry = load_registry()
    (plugin,) = [p for p in registry.plugins if p.name == "empty"]
    assert plugin.error is None and plugin.provides == ()
    assert plugin.hooks == ("snnkit_register_losses",)
    assert plugin.location == str(sandbox.root / "snnkit_fixture_empty.py")


# -- names: unknown, clashing, of a failed plugin; the default method ------------------------


def test_a_name_of_a_failed_plugin_says_the_plugin_failed(sandbox):
    install_broken(sandbox)
    registry = load_registry()
    with pytest.raises(SnnkitError) as info:
        registry.gradient("broken")  # the entry point's name
    assert str(info.value).startswith(
        "gradient 'broken' is unavailable: plugin 'broken' (snnkit-fixture-broken 0.1) failed "
        "to load: RuntimeError: boom"
    )
    with pytest.raises(SnnkitError, match="unknown gradient 'other'.*'broken'"):
        registry.gradient("other")


def test_names_of_a_plugin_that_failed_while_registering_are_recognised(sandbox):
    sandbox.install(
        "snnkit-fixture-hook", "0.1", BROKEN_HOOK_PLUGIN, {"hook": "snnkit_fixture_hook"}
    )
    registry = load_registry()
    with pytest.raises(SnnkitError, match="surrogate 'partial_surrogate' is unavailable"):
        registry.surrogate("partial_surrogate")


def test_available_and_listing_treat_a_clash(sandbox):
    install_clash(sandbox)
    registry = load_registry()
    assert "bptt" in registry.names("gradient") and "bptt" not in registry.available("gradient")
    assert "clash-unique" in registry.available("gradient")
    sides = [e for e in registry.listing("gradient") if e.name == "bptt"]
    assert [e.plugin.distribution for e in sides] == ["snnkit", "snnkit-fixture-clash"]


def test_default_gradient_rule(sandbox, monkeypatch):
    monkeypatch.delenv("SNNKIT_DEFAULT_GRAD", raising=False)
    assert load_registry(entry_points=False).default_gradient() == "bptt"  # no exodus here
    registry = load_registry()
    expected = "exodus" if "exodus" in registry.names("gradient") else "bptt"
    assert registry.default_gradient() == expected
    monkeypatch.setenv("SNNKIT_DEFAULT_GRAD", "bptt-detached-reset")
    assert registry.default_gradient() == "bptt-detached-reset"
    monkeypatch.setenv("SNNKIT_DEFAULT_GRAD", "nope")
    with pytest.raises(SnnkitError, match="^SNNKIT_DEFAULT_GRAD=nope: unknown gradient 'nope'"):
        registry.default_gradient()
