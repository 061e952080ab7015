from dualvgr.cli import main

raise SystemExit(main())
