from flowlite.cli import main

main()
