"""`bss distributors set`: a distributor's share of the workers, set and shown from a shell."""

from __future__ import annotations

import json


def test_a_distributors_weight_and_cap_are_set_and_shown(bss, tenant):
    shown = json.loads(bss("distributors", "show", tenant.slug, "--json").output)
    assert (shown["weight"], shown["max_in_flight"], shown["at_once"]) == (1.0, None, 16)
    done = bss("distributors", "set", tenant.slug, "--weight", "0.5", "--max-in-flight", "4")
    assert done.exit_code == 0, done.output
    assert "weight 0.5, at most 4 in flight" in done.output and "4 at a time" in done.output
    listed = json.loads(bss("distributors", "list", "--json").output)
    row = next(r for r in listed if r["slug"] == tenant.slug)
    assert (row["weight"], row["max_in_flight"], row["at_once"]) == (0.5, 4, 4)
    # `none` removes the cap: the weight alone sets the share (16 x 0.5)
    done = bss("distributors", "set", tenant.slug, "--max-in-flight", "none")
    assert done.exit_code == 0 and "no cap in flight" in done.output
    shown = json.loads(bss("distributors", "show", tenant.slug, "--json").output)
    assert (shown["weight"], shown["max_in_flight"], shown["at_once"]) == (0.5, None, 8)


def test_bad_values_are_refused_in_the_users_words(bss, tenant):
    zero = bss("distributors", "set", tenant.slug, "--max-in-flight", "0")
    assert zero.exit_code == 1 and "1 or more, not 0" in zero.output and "none" in zero.output
    words = bss("distributors", "set", tenant.slug, "--max-in-flight", "lots")
    assert words.exit_code == 2 and "'lots' is not a whole number" in words.output
    weight = bss("distributors", "set", tenant.slug, "--weight", "-1")
    assert weight.exit_code == 1 and "weight must be a number above 0" in weight.output
    nothing = bss("distributors", "set", tenant.slug)
    assert nothing.exit_code == 2 and "--weight, --max-in-flight, or both" in nothing.output
    missing = bss("distributors", "set", "nobody", "--weight", "2")
    assert missing.exit_code == 1 and "No distributor 'nobody'" in missing.output
    # Nothing was changed by the refusals
    shown = json.loads(bss("distributors", "show", tenant.slug, "--json").output)
    assert (shown["weight"], shown["max_in_flight"]) == (1.0, None)


def test_an_instances_quotas_are_raised_shown_and_reset_from_a_shell(bss, tenant):
    ref = f"{tenant.slug}/main"
    shown = json.loads(bss("instances", "show", ref, "--json").output)
    assert shown["quotas_per_second"] == {"reseller": 5, "admin": 40, "licensing": 1, "gmail": 1}
    # Google granted the project 10 License Manager calls a second
    done = bss("instances", "set-quota", ref, "licensing=10", "reseller=2.5")
    assert done.exit_code == 0, done.output
    assert "licensing 10/s" in done.output and "admin 40/s (default)" in done.output
    shown = json.loads(bss("instances", "show", ref, "--json").output)
    assert shown["quotas_per_second"]["licensing"] == 10
    assert shown["quotas_per_second"]["reseller"] == 2.5
    # `default` goes back to the settings' quota
    assert bss("instances", "set-quota", ref, "reseller=default").exit_code == 0
    shown = json.loads(bss("instances", "show", ref, "--json").output)
    assert (shown["quotas_per_second"]["reseller"], shown["quotas_per_second"]["licensing"]) == (
        5,
        10,
    )
    # Bad input is refused in words, and changes nothing
    for bad, said in [
        ("licencing=3", "the API one of reseller, admin, licensing, gmail"),
        ("licensing=0", "above 0"),
        ("licensing=fast", "above 0"),
        ("licensing", "API=CALLS_PER_SECOND"),
    ]:
        refused = bss("instances", "set-quota", ref, bad)
        assert refused.exit_code == 2 and said in refused.output, refused.output
    shown = json.loads(bss("instances", "show", ref, "--json").output)
    assert shown["quotas_per_second"]["licensing"] == 10
