from skyplan.cli.main import run

run()
