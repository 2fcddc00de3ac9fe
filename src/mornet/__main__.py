from mornet.cli import app

app(prog_name="mornet")
