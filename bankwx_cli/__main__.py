from bankwx_cli.main import run

run()
