from bss.cli import main

main()
