from vmimage.cli.main import app

app()
