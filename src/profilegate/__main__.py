from profilegate.cli import main

main()
