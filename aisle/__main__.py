from aisle.cli import main

main()
