from bss.tools import main

main()
