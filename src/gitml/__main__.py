from gitml.cli import main

main()
