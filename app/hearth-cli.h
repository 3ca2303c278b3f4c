/* hearth-cli.h — the subcommands of hearth-cli, one file each. Each takes
 * its own argv (argv[0] = the command name) and returns the exit status. */
#pragma once

int hr_cli_generate(int argc, char **argv);
