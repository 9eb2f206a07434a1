from vmimage.cli.main import main

main()
