from odfail.cli import main

main()
