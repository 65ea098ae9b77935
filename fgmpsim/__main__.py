from fgmpsim.cli import main

raise SystemExit(main())
