"""``rmsprop-harness identify``: which RMSprop an implementation really computes."""

from __future__ import annotations

import argparse


def add(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("identify", help="name the RMSprop an adapter really computes, from designed probes")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--adapter", metavar="NAME|module:factory",
                       help="a built-in adapter or a user adapter (package.module:factory)")
    which.add_argument("--recording", metavar="FILE.npz",
                       help="gradients, initial parameters and the trajectory an implementation produced "
                            "(grads/, params/, trajectory/, optional lr; docs/identify.md has the recipes)")
    p.add_argument("--lr", type=float, metavar="LR", help="with --recording: the constant learning rate, when the "
                                                          "recording has no lr")
    p.add_argument("args", nargs="*", metavar="ARG=VALUE",
                   help="its native arguments, as the adapter receives them (e.g. lr=0.01 momentum=0.9)")
    p.add_argument("--dry-run", action="store_true",
                   help="check the adapter and its arguments and print the probe; run nothing")
    return p


def _recording(args: argparse.Namespace) -> int:
    from harness.conformance.identify import identify_recording

    if args.args:
        from harness.cli.args import CliError

        raise CliError("--recording takes no ARG=VALUE (the recording is the implementation's output)")
    if args.dry_run:
        print(f"identify {args.recording}: the first 48 steps of up to 128 elements, fitted (dry run: nothing ran)")
        return 0
    found = identify_recording(args.recording, args.lr)
    print(f"{args.recording} was produced by:")
    print("  " + found.text().replace("\n", "\n  "))
    return 0 if found.reproduces else 1


def main(args: argparse.Namespace) -> int:
    if args.recording is not None:
        return _recording(args)
    from harness.adapters import ADAPTERS, resolve
    from harness.compare.explain import parse_args
    from harness.conformance.identify import identify_adapter
    from reference import presets

    [adapter] = resolve([args.adapter])[:1]
    kwargs = parse_args(ADAPTERS[adapter].preset, args.args, where=args.adapter)
    preset = ADAPTERS[adapter].preset
    presets.get(preset)(**kwargs)  # the arguments the claimed preset refuses are bad input (exit 2)
    if args.dry_run:
        from reference.identify import STEPS, probe

        pr = probe()
        print(f"identify {adapter} ({preset}): one probe of {STEPS} steps over {pr.params0.size} elements "
              f"({', '.join(pr.groups)}), run in its worker, then removed one argument at a time for the "
              "ignored-argument audit (dry run: nothing ran)")
        return 0
    required = presets.REQUIRED_DEFAULTS.get(preset, {})
    found, ignored = identify_adapter(adapter, kwargs, audit=required)
    print(f"{adapter}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())}) computes:")
    print("  " + found.text().replace("\n", "\n  "))
    claimed = presets.get(preset)(**kwargs)
    differences = found.versus(claimed)
    if differences:
        print(f"  NOT what the arguments say ({preset}): {'; '.join(differences)}")
    for item in ignored:
        print(f"  IGNORED: {item} has no effect (the probe's trajectory is bit-identical without it)")
    return 0 if found.reproduces and not differences else 1
