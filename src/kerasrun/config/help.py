"""`--help` in under a second: Hydra lists the config groups without rebuilding its repository
for every group.

Hydra's help lists every config group with its options. For each of the ~100 groups and
subgroups it asks, it parses the (empty) overrides and deep-copies its config repository
again (`ConfigLoaderImpl._parse_overrides_and_create_caching_repo`), and it does the whole
listing twice (the Hydra groups, then the app's). That is 0.8 s of `train --help`'s 1.7 s on
two cores. During `--help` only, the repository built for a `(config name, overrides)` pair
is reused: the listing only reads it, and the process exits after printing.

This wraps a private Hydra method (hydra-core 1.3): if a Hydra release renames it, the wrapper
is skipped and `--help` is as slow as Hydra's own.
"""

import functools

HELP_FLAGS = ("--help", "-h", "--hydra-help")


def speed_up_help(argv):
    """Reuses Hydra's config repository while `argv` asks for help; a no-op otherwise."""
    if not any(flag in argv for flag in HELP_FLAGS):
        return
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    create = getattr(ConfigLoaderImpl, "_parse_overrides_and_create_caching_repo", None)
    if create is None or getattr(create, "_kerasrun_cached", False):
        return
    built = {}

    @functools.wraps(create)
    def cached(self, config_name, overrides):
        key = (id(self), config_name, tuple(overrides))
        if key not in built:
            built[key] = create(self, config_name, overrides)
        return built[key]

    cached._kerasrun_cached = True
    ConfigLoaderImpl._parse_overrides_and_create_caching_repo = cached
