from nextvid.cli import main

raise SystemExit(main())
